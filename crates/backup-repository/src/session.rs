//! A backup session: any number of byte streams (a dump, or every file of a tree) cut into
//! chunks and hashed as they are read, the new chunks compressed and sealed on worker threads
//! (across streams: many small files keep every core busy), packed together, the packs
//! uploaded a few at a time, and an index object written every few packs, so a backup killed
//! half-way leaves indexed packs that the next backup reuses (and the packs it had not indexed
//! yet are adopted by the next backup: see [`crate::recover`]).
//!
//! Memory stays bounded whatever the data: one read window of two maximum chunks (allocated
//! once per session), the batch of new chunks being filled and at most `2 x workers` being
//! encoded (each about 1 MiB, or one larger chunk), the open pack and [`UPLOADS`] packs being
//! uploaded.

use crate::blob::seal_chunk;
use crate::chunking::chunk_boundaries;
use crate::crypto::ChunkId;
use crate::index::{Index, IndexedPack, pack_key};
use crate::pack::PackBuilder;
use crate::repository::{Repository, RepositoryError};
use crate::sealed::stored_metadata;
use crate::stream::{BackupStats, PACK_TARGET, StreamContent};
use backup_core::ObjectStorageExt;
use backup_core::progress::Progress;
use bytes::Bytes;
use futures::StreamExt;
use futures::io::{AsyncRead, AsyncReadExt};
use futures::stream::FuturesUnordered;
use std::collections::HashSet;
use tokio::task::JoinHandle;

/// Packs uploaded at the same time.
pub const UPLOADS: usize = 4;
/// An index object is written after this many packs (and at the end).
pub const INDEX_EVERY: usize = 8;

/// A new chunk after its worker: id, plaintext length, stored form.
type Encoded = (ChunkId, usize, Vec<u8>);

/// New chunks are handed to the workers in batches of up to this many bytes or chunks (a
/// larger chunk alone): one hand-over, not one per chunk, for thousands of small files.
const ENCODE_BATCH_BYTES: usize = 1 << 20;
const ENCODE_BATCH_CHUNKS: usize = 256;

/// Chunks written by one backup; see the module documentation.
pub struct BackupSession {
    repo: Repository,
    known: Index,
    /// Packs a prune marked unused: their chunks are stored again.
    doomed: HashSet<String>,
    /// Session markers deleted once everything uploaded is indexed.
    markers: Vec<String>,
    added: HashSet<ChunkId>,
    workers: usize,
    window: Vec<u8>,
    /// New chunks not handed to a worker yet, and their bytes.
    batch: Vec<(ChunkId, Vec<u8>)>,
    batch_bytes: usize,
    encoding: FuturesUnordered<JoinHandle<Result<Vec<Encoded>, RepositoryError>>>,
    pack: PackBuilder,
    uploads: FuturesUnordered<JoinHandle<Result<(IndexedPack, u64), RepositoryError>>>,
    unindexed: Vec<IndexedPack>,
    stats: BackupStats,
    /// The first failure of encoding, packing, uploading or indexing. A failed session
    /// refuses everything after it: its chunks may be in no stored pack, so nothing may
    /// refer to them.
    failure: Option<String>,
    /// Packs are sealed at this size ([`PACK_TARGET`]; smaller in tests).
    pack_target: usize,
    /// Batches are handed over at this size ([`ENCODE_BATCH_BYTES`]; smaller in tests).
    batch_target: usize,
}

/// A stream as stored: its chunk ids (hex) in order and its length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredStream {
    /// Chunk ids, hex, in order.
    pub chunks: Vec<String>,
    /// Bytes.
    pub size: u64,
}

impl StoredStream {
    /// As the content of a component named `name`.
    pub fn named(self, name: &str) -> StreamContent {
        StreamContent {
            name: name.to_owned(),
            size: self.size,
            chunks: self.chunks,
        }
    }
}

impl BackupSession {
    /// Starts a backup of `repo` (see [`crate::recover`]: its session marker, the index, the
    /// packs of killed backups adopted); `workers` chunks are encoded in parallel.
    pub async fn start(repo: &Repository, workers: usize) -> Result<Self, RepositoryError> {
        let start = repo.start_backup().await?;
        Ok(Self {
            repo: repo.clone(),
            known: start.index,
            doomed: start.doomed,
            markers: start.markers,
            added: HashSet::new(),
            workers: workers.max(1),
            window: Vec::new(),
            batch: Vec::new(),
            batch_bytes: 0,
            encoding: FuturesUnordered::new(),
            pack: PackBuilder::default(),
            uploads: FuturesUnordered::new(),
            unindexed: Vec::new(),
            stats: BackupStats {
                adopted_packs: start.adopted,
                ..BackupStats::default()
            },
            failure: None,
            pack_target: PACK_TARGET,
            batch_target: ENCODE_BATCH_BYTES,
        })
    }

    /// Every indexed blob when the session started (to read earlier snapshots with).
    pub fn index(&self) -> &Index {
        &self.known
    }

    /// Whether a chunk is stored and may be reused: indexed before this session in a pack no
    /// prune has marked, or stored by this session.
    pub fn contains(&self, id: &ChunkId) -> bool {
        self.added.contains(id)
            || self
                .known
                .pack_of(id)
                .is_some_and(|pack| !self.doomed.contains(pack))
    }

    /// Why the session failed, if it did: a chunk could not be encoded, or a pack or an
    /// index could not be stored. Every later call fails with this, and so does
    /// [`BackupSession::finish`]: no snapshot may refer to what this session added.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Fails unless the session is still usable.
    fn usable(&self) -> Result<(), RepositoryError> {
        match &self.failure {
            Some(failure) => Err(RepositoryError::SessionFailed(failure.clone())),
            None => Ok(()),
        }
    }

    /// Remembers a failure of the repository side (the first one wins).
    fn failed(&mut self, error: RepositoryError) -> RepositoryError {
        self.failure.get_or_insert_with(|| error.to_string());
        error
    }

    /// Stores a stream read to its end, `progress` advanced as input is consumed. Its chunks
    /// may still be encoding when this returns; [`BackupSession::finish`] completes them.
    /// An error reading the stream fails this stream only; a failure to store fails the
    /// session ([`BackupSession::failure`]).
    pub async fn add_stream(
        &mut self,
        mut reader: impl AsyncRead + Unpin,
        progress: &dyn Progress,
    ) -> Result<StoredStream, RepositoryError> {
        self.usable()?;
        let params = self.repo.config().chunker;
        // Room for the largest chunk and two average ones: each pass cuts all but the last
        // chunk it finds (whose end may lie in bytes not read yet) and moves that one to the
        // front, about one average chunk. Twice the largest (16 MiB) held 6 MiB more for
        // nothing.
        let size = (params.max_size + 2 * params.avg_size) as usize;
        let mut window = std::mem::take(&mut self.window);
        window.resize(size, 0);
        let mut stored = StoredStream::default();
        let (mut filled, mut at_end) = (0, false);
        let result = async {
            while !at_end || filled > 0 {
                while !at_end && filled < size {
                    let n = reader
                        .read(&mut window[filled..])
                        .await
                        .map_err(backup_core::StorageError::from)?;
                    filled += n;
                    at_end = n == 0;
                    progress.advance(n as u64);
                }
                let mut boundaries = chunk_boundaries(&window[..filled], params);
                // Until the end, the last cut may depend on bytes not read yet: keep it.
                if !at_end {
                    boundaries.pop();
                }
                let consumed = boundaries.last().map(|(o, l)| o + l).unwrap_or(0);
                for (offset, length) in boundaries {
                    self.add_chunk(&window[offset..offset + length], &mut stored)
                        .await?;
                }
                window.copy_within(consumed..filled, 0);
                filled -= consumed;
            }
            Ok::<_, RepositoryError>(())
        }
        .await;
        self.window = window;
        result.map(|()| stored)
    }

    /// Hashes a chunk and, unless it is stored already, hands it to a worker to encode.
    async fn add_chunk(
        &mut self,
        data: &[u8],
        stream: &mut StoredStream,
    ) -> Result<(), RepositoryError> {
        let id = self.repo.key().chunk_id(data);
        stream.chunks.push(id.to_hex());
        stream.size += data.len() as u64;
        self.stats.chunks += 1;
        if self.contains(&id) {
            self.stats.deduplicated += 1;
            return Ok(());
        }
        self.added.insert(id);
        self.batch.push((id, data.to_vec()));
        self.batch_bytes += data.len();
        if self.batch_bytes >= self.batch_target || self.batch.len() >= ENCODE_BATCH_CHUNKS {
            self.encode_batch().await?;
        }
        Ok(())
    }

    /// Hands the batch of new chunks to a worker, once fewer than two per worker are busy.
    async fn encode_batch(&mut self) -> Result<(), RepositoryError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        while self.encoding.len() >= 2 * self.workers {
            self.collect_encoded().await?;
        }
        let (key, level) = (
            self.repo.key().clone(),
            self.repo.config().compression_level,
        );
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        self.encoding.push(tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .map(|(id, data)| Ok((id, data.len(), seal_chunk(&key, &id, &data, level)?)))
                .collect()
        }));
        Ok(())
    }

    /// Adds one batch of encoded chunks to the pack, sealing the pack whenever it is full.
    async fn collect_encoded(&mut self) -> Result<(), RepositoryError> {
        if let Some(done) = self.encoding.next().await {
            let encoded = done
                .map_err(RepositoryError::from)
                .and_then(|encoded| encoded)
                .map_err(|e| self.failed(e))?;
            for (id, length, blob) in encoded {
                self.pack.add(id, &blob, length);
                if self.pack.len() >= self.pack_target {
                    self.seal_pack().await?;
                }
            }
        }
        Ok(())
    }

    /// Seals the open pack and starts its upload, waiting for one when [`UPLOADS`] are running.
    async fn seal_pack(&mut self) -> Result<(), RepositoryError> {
        if self.pack.is_empty() {
            return Ok(());
        }
        while self.uploads.len() >= UPLOADS {
            self.collect_upload().await?;
        }
        let fresh = PackBuilder::with_capacity(self.pack_target + self.pack_target / 2);
        let (builder, repo) = (std::mem::replace(&mut self.pack, fresh), self.repo.clone());
        self.uploads
            .push(tokio::spawn(async move { repo.store_pack(builder).await }));
        Ok(())
    }

    async fn collect_upload(&mut self) -> Result<(), RepositoryError> {
        if let Some(done) = self.uploads.next().await {
            let (pack, size) = done
                .map_err(RepositoryError::from)
                .and_then(|stored| stored)
                .map_err(|e| self.failed(e))?;
            self.stats.added_bytes += size;
            self.unindexed.push(pack);
            if self.unindexed.len() >= INDEX_EVERY {
                self.write_index().await?;
            }
        }
        Ok(())
    }

    /// Writes one index object for the packs uploaded since the last one.
    async fn write_index(&mut self) -> Result<(), RepositoryError> {
        if self.unindexed.is_empty() {
            return Ok(());
        }
        let packs = std::mem::take(&mut self.unindexed);
        match self.repo.write_index_object(&packs).await {
            Ok(_) => Ok(()),
            Err(error) => Err(self.failed(error)),
        }
    }

    /// Encodes, packs, uploads and indexes what is left; returns what the session wrote.
    pub async fn finish(mut self) -> Result<BackupStats, RepositoryError> {
        self.usable()?;
        self.encode_batch().await?;
        while !self.encoding.is_empty() {
            self.collect_encoded().await?;
        }
        self.seal_pack().await?;
        while !self.uploads.is_empty() {
            self.collect_upload().await?;
        }
        self.write_index().await?;
        self.repo.end_sessions(&self.markers).await?;
        Ok(self.stats)
    }
}

impl Repository {
    /// Seals a pack (on a worker thread) and uploads it; returns it with its stored size.
    pub(crate) async fn store_pack(
        &self,
        builder: PackBuilder,
    ) -> Result<(IndexedPack, u64), RepositoryError> {
        let (key, compress) = (self.key().clone(), self.config().compressed_metadata());
        let (id, bytes, blobs) =
            tokio::task::spawn_blocking(move || builder.finish(&key, compress)).await??;
        let size = bytes.len() as u64;
        self.storage()
            .put_bytes(&pack_key(&id), Bytes::from(bytes))
            .await?;
        Ok((IndexedPack { id, blobs }, size))
    }

    /// Writes one index object listing `packs` (named by their ids' hash).
    pub(crate) async fn write_index_object<P>(&self, packs: &[P]) -> Result<String, RepositoryError>
    where
        P: std::borrow::Borrow<IndexedPack> + serde::Serialize,
    {
        let ids: Vec<&str> = packs.iter().map(|p| p.borrow().id.as_str()).collect();
        let name = format!("index/{}", blake3::hash(ids.join(",").as_bytes()).to_hex());
        /// The shape of an index object, borrowed.
        #[derive(serde::Serialize)]
        struct Listed<'a, P> {
            packs: &'a [P],
        }
        let plain = serde_json::to_vec(&Listed { packs }).expect("index serializes");
        let plain = stored_metadata(plain, self.config().compressed_metadata());
        let sealed = self.key().seal(&plain, name.as_bytes())?;
        self.storage().put_bytes(&name, Bytes::from(sealed)).await?;
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prune::PruneOptions;
    use crate::stream::tests::{damage_first_pack, repository, snapshot};
    use backup_core::progress::NoProgress;
    use backup_testing::noise;
    use bytes::Bytes;
    use chrono::Utc;
    use std::time::Duration;

    /// What `kill -9` after the uploads and before the index leaves: packs in no index, and
    /// the session's marker.
    async fn killed_after_upload(repo: &Repository, data: &[u8]) {
        let mut session = BackupSession::start(repo, 2).await.unwrap();
        session.add_stream(data, &NoProgress).await.unwrap();
        session.encode_batch().await.unwrap();
        while !session.encoding.is_empty() {
            session.collect_encoded().await.unwrap();
        }
        session.seal_pack().await.unwrap();
        while let Some(done) = session.uploads.next().await {
            done.unwrap().unwrap();
        }
    }

    async fn restored(repo: &Repository, content: &crate::StreamContent) -> Vec<u8> {
        let mut out = Vec::new();
        let index = repo.load_index().await.unwrap();
        repo.restore_stream(&index, content, &mut out)
            .await
            .unwrap();
        out
    }

    #[tokio::test]
    async fn a_stream_is_cut_where_its_whole_content_is_whatever_the_window() {
        let repo = repository().await;
        // Several windows' worth, with runs of zeros where chunks reach the largest size.
        let mut data = noise(3_000_000, 4);
        data[500_000..1_500_000].fill(0);
        let expected: Vec<String> = crate::chunking::chunk_boundaries(&data, repo.config().chunker)
            .into_iter()
            .map(|(offset, length)| repo.key().chunk_id(&data[offset..offset + length]).to_hex())
            .collect();
        let mut session = BackupSession::start(&repo, 2).await.unwrap();
        let stored = session
            .add_stream(data.as_slice(), &NoProgress)
            .await
            .unwrap();
        session.finish().await.unwrap();
        assert_eq!(stored.chunks, expected);
        assert_eq!(stored.size, data.len() as u64);
    }

    #[tokio::test]
    async fn a_format_1_repository_keeps_its_plain_metadata_and_both_kinds_are_read() {
        let mut repo = repository().await;
        assert!(repo.config().compressed_metadata());
        repo.config.version = 1;
        let first = noise(300_000, 1);
        let (old, _) = repo.backup_stream("old", first.as_slice()).await.unwrap();
        let (storage, master) = (repo.storage().clone(), repo.key().clone());
        let plain = |key: String| {
            let (storage, master) = (storage.clone(), master.clone());
            async move {
                let sealed = storage.get_bytes(&key).await.unwrap();
                master.open(&sealed, key.as_bytes(), &key).unwrap()
            }
        };
        let index = repo.storage().list_all("index/").await.unwrap();
        assert!(plain(index[0].key.clone()).await.starts_with(b"{"));
        repo.config.version = 2;
        let second = noise(300_000, 2);
        let (new, _) = repo.backup_stream("new", second.as_slice()).await.unwrap();
        let index = repo.storage().list_all("index/").await.unwrap();
        assert_eq!(index.len(), 2);
        let mut starts = Vec::new();
        for object in index {
            starts.push(plain(object.key).await[0]);
        }
        starts.sort();
        assert_eq!(starts, [b'(', b'{'], "one plain, one compressed");
        assert_eq!(restored(&repo, &old).await, first);
        assert_eq!(restored(&repo, &new).await, second);
        let check = repo.check(100).await.unwrap();
        assert!(check.errors.is_empty(), "{:?}", check.errors);
        assert_eq!(check.packs, 2);
    }

    #[tokio::test]
    async fn the_next_backup_adopts_what_a_killed_one_uploaded() {
        let repo = repository().await;
        let data = noise(600_000, 5);
        killed_after_upload(&repo, &data).await;
        assert!(repo.load_index().await.unwrap().is_empty());
        assert_eq!(repo.storage().list_all("sessions/").await.unwrap().len(), 1);

        let (content, stats) = repo.backup_stream("again", data.as_slice()).await.unwrap();
        assert_eq!(stats.adopted_packs, 1);
        assert_eq!((stats.deduplicated, stats.added_bytes), (stats.chunks, 0));
        assert!(
            repo.storage()
                .list_all("sessions/")
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(repo.storage().list_all("data/").await.unwrap().len(), 1);
        assert_eq!(restored(&repo, &content).await, data);
    }

    /// Ten files of 1 MB.
    fn many_packs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..10 {
            std::fs::write(dir.path().join(format!("f{n}")), noise(1_000_000, n)).unwrap();
        }
        dir
    }

    #[tokio::test]
    async fn a_failed_upload_fails_the_backup_and_the_session_stays_failed() {
        let repo = repository().await;
        let earlier = noise(200_000, 9);
        let (kept, _) = repo
            .backup_stream("kept", earlier.as_slice())
            .await
            .unwrap();
        repo.write_snapshot(snapshot(vec![kept.clone()]))
            .await
            .unwrap();
        let failing = std::sync::Arc::new(crate::failing::FailingStorage::new(
            repo.storage().clone(),
            "data/",
            1,
        ));
        let flaky = Repository::open(failing, b"pw").await.unwrap();
        let dir = many_packs();
        let mut session = BackupSession::start(&flaky, 2).await.unwrap();
        // About 40 packs: uploads are collected while the files are read.
        session.pack_target = 256 * 1024;
        session.batch_target = 64 * 1024;
        let options = crate::tree::TreeBackupOptions {
            exclude: crate::tree::PathPatterns::new(&[]).unwrap(),
            parent: Default::default(),
        };
        let error = session
            .add_tree(dir.path(), options, &NoProgress)
            .await
            .map(|report| report.warnings)
            .unwrap_err();
        assert!(error.to_string().contains("injected failure"), "{error}");
        let again = session
            .add_stream(&b"more"[..], &NoProgress)
            .await
            .unwrap_err();
        assert!(again.to_string().contains("injected failure"), "{again}");
        let finished = session.finish().await.unwrap_err();
        assert!(
            finished.to_string().contains("injected failure"),
            "{finished}"
        );
        // What was there before is intact.
        assert_eq!(restored(&repo, &kept).await, earlier);
        let check = repo.check(100).await.unwrap();
        assert!(check.errors.is_empty(), "{:?}", check.errors);
    }

    /// What a writer without the key can plant: a "pack" of random bytes ending in a real
    /// pack's sealed header (named by its own hash, as ids are), a junk session marker, and
    /// stray objects of every shape.
    async fn plant_forgeries(repo: &Repository, real: &str) {
        let bytes = repo.storage().get_bytes(real).await.unwrap();
        let n = bytes.len();
        let header = u32::from_le_bytes(bytes[n - 4..].try_into().unwrap()) as usize;
        let mut forged = noise(n - 4 - header, 99);
        forged.extend_from_slice(&bytes[n - 4 - header..]);
        let id = blake3::hash(&forged).to_hex().to_string();
        repo.storage()
            .put_bytes(&pack_key(&id), Bytes::from(forged))
            .await
            .unwrap();
        for (key, body) in [
            ("sessions/junk", &b"junk"[..]),
            ("data/x", b"stray"),
            ("data/ab", b""),
            ("data/zz/not-hex", b"stray"),
            ("index/short", b"junk"),
            ("snapshots/x", b"junk"),
        ] {
            repo.storage()
                .put_bytes(key, Bytes::copy_from_slice(body))
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn forged_packs_are_not_adopted_and_indexed_blobs_never_replaced() {
        let repo = repository().await;
        let first = noise(600_000, 21);
        let (kept, _) = repo.backup_stream("first", first.as_slice()).await.unwrap();
        repo.write_snapshot(snapshot(vec![kept.clone()]))
            .await
            .unwrap();
        let indexed: Vec<String> = repo
            .storage()
            .list_all("data/")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        // A backup killed after its upload leaves a pack in no index; the forger copies its
        // header onto random bytes and deletes it.
        let second = [first.as_slice(), noise(300_000, 22).as_slice()].concat();
        killed_after_upload(&repo, &second).await;
        let orphan = repo
            .storage()
            .list_all("data/")
            .await
            .unwrap()
            .into_iter()
            .find(|o| !indexed.contains(&o.key))
            .unwrap();
        plant_forgeries(&repo, &orphan.key).await;
        repo.storage().delete(&orphan.key).await.unwrap();

        // The owner's next backup of the same data.
        let (newer, stats) = repo
            .backup_stream("second", second.as_slice())
            .await
            .unwrap();
        assert_eq!(stats.adopted_packs, 0, "a forged pack adopted");
        assert!(stats.added_bytes > 0, "stored again");
        repo.write_snapshot(snapshot(vec![newer.clone()]))
            .await
            .unwrap();
        assert_eq!(restored(&repo, &kept).await, first);
        assert_eq!(restored(&repo, &newer).await, second);
        // `check` names every planted object, and panics on none.
        let check = repo.check(100).await.unwrap();
        let named = [check.errors.clone(), check.warnings.clone()].concat();
        for key in [
            "data/x",
            "data/ab",
            "data/zz/not-hex",
            "index/short",
            "snapshots/x",
        ] {
            assert!(named.iter().any(|n| n.starts_with(key)), "{key}: {named:?}");
        }
        assert_eq!(check.snapshots, 2);
    }

    #[tokio::test]
    async fn a_damaged_unindexed_pack_is_not_adopted() {
        let repo = repository().await;
        let data = noise(300_000, 7);
        killed_after_upload(&repo, &data).await;
        damage_first_pack(&repo, 10).await;

        let (content, stats) = repo.backup_stream("again", data.as_slice()).await.unwrap();
        assert_eq!((stats.adopted_packs, stats.deduplicated), (0, 0));
        assert!(stats.added_bytes > 0);
        assert_eq!(restored(&repo, &content).await, data);
    }

    #[tokio::test]
    async fn packs_a_prune_marked_are_not_deduplicated_against() {
        let repo = repository().await;
        let data = noise(300_000, 6);
        // Stored, but no snapshot refers to it: a prune marks its pack.
        repo.backup_stream("a", data.as_slice()).await.unwrap();
        let now = Utc::now() + chrono::Duration::seconds(1);
        let report = repo
            .prune(&PruneOptions::new(Duration::ZERO, now))
            .await
            .unwrap();
        assert_eq!(report.packs_marked, 1);

        let (content, stats) = repo.backup_stream("a", data.as_slice()).await.unwrap();
        assert_eq!(stats.deduplicated, 0);
        assert!(stats.added_bytes > 0);
        repo.write_snapshot(snapshot(vec![content.clone()]))
            .await
            .unwrap();
        let later = now + chrono::Duration::seconds(1);
        let report = repo
            .prune(&PruneOptions::new(Duration::ZERO, later))
            .await
            .unwrap();
        assert_eq!(report.packs_deleted, 1);
        assert_eq!(restored(&repo, &content).await, data);
        assert!(repo.check(100).await.unwrap().errors.is_empty());
    }
}
