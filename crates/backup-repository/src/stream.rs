//! Byte-stream components: backed up in content-defined chunks, deduplicated against the
//! index, packed, indexed; a snapshot object written last makes them visible. Memory stays
//! bounded (two maximum chunks of input plus one pack) whatever the stream's size.

use crate::blob::decode_blob_in_place;
use crate::crypto::MasterKey;
use crate::index::{Index, pack_key, parse_id};
use crate::pack::BlobLocation;
use crate::repository::{Repository, RepositoryError};
use crate::session::BackupSession;
use backup_core::ObjectStorageExt;
use backup_core::progress::NoProgress;
use bytes::BytesMut;
use futures::TryStreamExt;
use futures::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Chunks encoded at the same time by default: one per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Packs are cut at about this size.
pub const PACK_TARGET: usize = 16 * 1024 * 1024;

/// A stream's chunks stored one after the other in a pack are fetched together, up to this
/// many stored bytes...
const STREAM_READ_STORED: u64 = 4 * 1024 * 1024;
/// ... and this many bytes once decoded (what one read holds in memory).
const STREAM_READ_PLAIN: u64 = 16 * 1024 * 1024;
/// Reads of a stream in flight, in order.
const READS_AHEAD: usize = 4;

/// A stream's chunks as ranged reads, in order: consecutive chunks stored one after the other
/// in the same pack share a read, within [`STREAM_READ_STORED`] and [`STREAM_READ_PLAIN`].
/// One request per chunk would cost a server reading whole blocks (MinIO: 1 MiB) up to 2 MiB
/// per chunk more than it sends.
fn stream_reads<'a>(
    index: &'a Index,
    chunks: &[String],
) -> Result<Vec<(&'a str, Vec<BlobLocation>)>, RepositoryError> {
    let mut reads: Vec<(&str, Vec<BlobLocation>)> = Vec::new();
    for hex_id in chunks {
        let (pack, location) = index.require(&parse_id(hex_id)?)?;
        if let Some((last_pack, locations)) = reads.last_mut()
            && *last_pack == pack
            && joins(locations, &location)
        {
            locations.push(location);
            continue;
        }
        reads.push((pack, vec![location]));
    }
    Ok(reads)
}

/// Whether `next` is stored right after the last of `locations` and the read stays within
/// its bounds.
fn joins(locations: &[BlobLocation], next: &BlobLocation) -> bool {
    let (first, last) = (&locations[0], &locations[locations.len() - 1]);
    let plain: u64 = locations.iter().map(|l| u64::from(l.plain_length)).sum();
    last.end() == next.offset
        && next.end() - first.offset <= STREAM_READ_STORED
        && plain + u64::from(next.plain_length) <= STREAM_READ_PLAIN
}

/// Decodes a blob read from `pack` over its stored bytes, checked against its id and its
/// indexed length; the damaged object is named, whatever the damage.
pub(crate) fn decode_stored<'a>(
    key: &MasterKey,
    location: &BlobLocation,
    pack: &str,
    stored: &'a mut [u8],
) -> Result<Cow<'a, [u8]>, RepositoryError> {
    let corrupt =
        |why: String| RepositoryError::Corrupt(format!("{why} (in pack {})", pack_key(pack)));
    let chunk =
        decode_blob_in_place(key, &location.id, stored).map_err(|e| corrupt(e.to_string()))?;
    if chunk.len() != location.plain_length as usize {
        return Err(corrupt(format!(
            "blob {} holds {} bytes, indexed as {}",
            location.id.to_hex(),
            chunk.len(),
            location.plain_length
        )));
    }
    Ok(chunk)
}

/// Stored bytes of a pack from `start` on, read at once (blobs are decoded over them).
pub(crate) struct Span {
    bytes: BytesMut,
    start: u64,
}

impl Span {
    /// `bytes` read from `start` on.
    pub(crate) fn new(bytes: BytesMut, start: u64) -> Self {
        Self { bytes, start }
    }

    /// A blob's stored bytes; a span that ends before them (a truncated pack) is damage.
    pub(crate) fn of(
        &mut self,
        location: &BlobLocation,
        pack: &str,
    ) -> Result<&mut [u8], RepositoryError> {
        let available = self.bytes.len();
        location
            .offset
            .checked_sub(self.start)
            .and_then(|at| usize::try_from(at).ok())
            .and_then(|at| Some(at..at.checked_add(location.length as usize)?))
            .and_then(|range| self.bytes.get_mut(range))
            .ok_or_else(|| {
                RepositoryError::Corrupt(format!(
                    "{} ends before blob {} (read {available} bytes from offset {})",
                    pack_key(pack),
                    location.id.to_hex(),
                    self.start
                ))
            })
    }
}

impl Repository {
    /// One ranged read of `pack` covering every blob of `locations`.
    pub(crate) async fn read_span(
        &self,
        pack: &str,
        locations: impl Iterator<Item = &BlobLocation>,
    ) -> Result<Span, RepositoryError> {
        let (start, end) = locations.fold((u64::MAX, 0), |(start, end), l| {
            (start.min(l.offset), end.max(l.end()))
        });
        let start = start.min(end);
        let bytes = self
            .storage()
            .get_range_bytes(&pack_key(pack), Some(start..end))
            .await?;
        Ok(Span::new(bytes.into(), start))
    }
}

/// A stream component's content: its chunks in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamContent {
    /// Component name.
    pub name: String,
    /// Bytes in the stream.
    pub size: u64,
    /// Chunk ids (hex) in order.
    pub chunks: Vec<String>,
}

/// What a backup wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackupStats {
    /// Chunks in the stream.
    pub chunks: u64,
    /// Chunks already in the repository.
    pub deduplicated: u64,
    /// Stored bytes added (packs).
    pub added_bytes: u64,
    /// Packs a killed backup had uploaded without indexing them, indexed and reused.
    pub adopted_packs: usize,
}

impl Repository {
    /// Backs up a byte stream as component `name` in a session of its own.
    pub async fn backup_stream(
        &self,
        name: &str,
        reader: impl AsyncRead + Unpin,
    ) -> Result<(StreamContent, BackupStats), RepositoryError> {
        let mut session = BackupSession::start(self, default_workers()).await?;
        let stored = session.add_stream(reader, &NoProgress).await?;
        let stats = session.finish().await?;
        Ok((stored.named(name), stats))
    }

    /// Chunks read and verified, in order: neighbouring chunks of a pack fetched by one
    /// ranged read (see [`stream_reads`]), [`READS_AHEAD`] reads ahead, each decoded on a
    /// worker thread.
    pub(crate) fn fetch_chunks<'a>(
        &'a self,
        index: &'a Index,
        chunks: &'a [String],
    ) -> impl futures::Stream<Item = Result<Vec<u8>, RepositoryError>> + 'a {
        let reads = match stream_reads(index, chunks) {
            Ok(reads) => reads.into_iter().map(Ok).collect(),
            Err(error) => vec![Err(error)],
        };
        futures::stream::iter(reads)
            .map_ok(move |(pack, locations)| async move {
                let mut span = self.read_span(pack, locations.iter()).await?;
                let (key, pack) = (self.key().clone(), pack.to_owned());
                tokio::task::spawn_blocking(move || {
                    locations
                        .iter()
                        .map(|location| {
                            decode_stored(&key, location, &pack, span.of(location, &pack)?)
                                .map(Cow::into_owned)
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .await?
            })
            .try_buffered(READS_AHEAD)
            .map_ok(|chunks| futures::stream::iter(chunks.into_iter().map(Ok)))
            .try_flatten()
    }

    /// Writes a stream component back, verifying every chunk; returns the bytes written.
    pub async fn restore_stream(
        &self,
        index: &Index,
        content: &StreamContent,
        mut writer: impl AsyncWrite + Unpin,
    ) -> Result<u64, RepositoryError> {
        let fetches = self.fetch_chunks(index, &content.chunks);
        futures::pin_mut!(fetches);
        let mut written = 0u64;
        while let Some(chunk) = fetches.try_next().await? {
            writer
                .write_all(&chunk)
                .await
                .map_err(backup_core::StorageError::from)?;
            written += chunk.len() as u64;
        }
        writer
            .flush()
            .await
            .map_err(backup_core::StorageError::from)?;
        Ok(written)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::chunking::ChunkerParams;
    use crate::crypto::KdfParams;
    use crate::repository::InitOptions;
    use crate::snapshot_file::SnapshotFile;
    use backup_core::{Component, RepositoryLocation, Snapshot, SnapshotId, Totals};
    use backup_testing::noise;
    use bytes::Bytes;
    use std::time::Duration;

    pub(crate) async fn repository() -> Repository {
        let storage = backup_storage::open(
            &RepositoryLocation::parse("memory://r").unwrap(),
            &backup_storage::StorageOptions::default(),
        )
        .await
        .unwrap();
        let options = InitOptions {
            chunker: ChunkerParams {
                min_size: 16 * 1024,
                avg_size: 64 * 1024,
                max_size: 256 * 1024,
            },
            kdf: KdfParams::CHEAPEST,
            ..InitOptions::default()
        };
        Repository::init(storage, b"pw", options).await.unwrap()
    }

    /// Flips the bits of byte `at` in the first pack listed; returns the pack's key.
    pub(crate) async fn damage_first_pack(repo: &Repository, at: usize) -> String {
        let pack = repo.storage().list_all("data/").await.unwrap().remove(0);
        let mut bytes = repo.storage().get_bytes(&pack.key).await.unwrap().to_vec();
        bytes[at] ^= 0xff;
        repo.storage()
            .put_bytes(&pack.key, Bytes::from(bytes))
            .await
            .unwrap();
        pack.key
    }

    pub(crate) fn snapshot(streams: Vec<StreamContent>) -> SnapshotFile {
        let components = streams
            .iter()
            .map(|s| Component::new(&s.name, "stream").succeeded(s.size, Duration::ZERO))
            .collect();
        let snapshot = Snapshot {
            id: SnapshotId::parse("00000000").unwrap(),
            time: chrono::Utc::now(),
            source: "test".into(),
            tags: Default::default(),
            labels: Default::default(),
            components,
            totals: Totals::default(),
        };
        SnapshotFile {
            snapshot,
            streams,
            trees: vec![],
        }
    }

    #[tokio::test]
    async fn a_stream_round_trips_through_a_snapshot() {
        let repo = repository().await;
        let data = noise(3_000_000, 1);
        let (content, stats) = repo.backup_stream("dump", data.as_slice()).await.unwrap();
        assert_eq!(content.size, data.len() as u64);
        assert!(stats.chunks > 5 && stats.deduplicated == 0 && stats.added_bytes > 3_000_000);
        let id = repo.write_snapshot(snapshot(vec![content])).await.unwrap();

        let reopened = Repository::open(repo.storage().clone(), b"pw")
            .await
            .unwrap();
        let index = reopened.load_index().await.unwrap();
        let snapshots = reopened.snapshots().await.unwrap();
        assert_eq!(snapshots.len(), 1);
        assert_eq!(snapshots[0].snapshot.id, id);
        let mut out = Vec::new();
        let written = reopened
            .restore_stream(&index, &snapshots[0].streams[0], &mut out)
            .await
            .unwrap();
        assert_eq!(written, data.len() as u64);
        assert!(out == data, "restored bytes differ");
    }

    #[tokio::test]
    async fn a_second_backup_of_similar_data_stores_only_what_changed() {
        let repo = repository().await;
        let data = noise(2_000_000, 2);
        let (_, first) = repo.backup_stream("a", data.as_slice()).await.unwrap();
        let (_, same) = repo.backup_stream("a", data.as_slice()).await.unwrap();
        assert_eq!(
            (same.deduplicated, same.added_bytes),
            (same.chunks, 0),
            "unchanged data adds nothing"
        );
        let mut edited = b"an edit at the start".to_vec();
        edited.extend_from_slice(&data);
        let (_, changed) = repo.backup_stream("a", edited.as_slice()).await.unwrap();
        assert!(
            changed.added_bytes < first.added_bytes / 4,
            "{} added for a small edit (first: {})",
            changed.added_bytes,
            first.added_bytes
        );
    }

    #[tokio::test]
    async fn a_damaged_pack_is_named_on_restore() {
        let repo = repository().await;
        let data = noise(500_000, 3);
        let (content, _) = repo.backup_stream("x", data.as_slice()).await.unwrap();
        let index = repo.load_index().await.unwrap();
        damage_first_pack(&repo, 100).await;
        let error = repo
            .restore_stream(&index, &content, futures::io::sink())
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("integrity check failed")
                || error.to_string().contains("pack"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_empty_stream_is_a_valid_component() {
        let repo = repository().await;
        let (content, stats) = repo.backup_stream("empty", &b""[..]).await.unwrap();
        let index = repo.load_index().await.unwrap();
        assert_eq!(
            (content.size, content.chunks.len(), stats.added_bytes),
            (0, 0, 0)
        );
        let mut out = Vec::new();
        assert_eq!(
            repo.restore_stream(&index, &content, &mut out)
                .await
                .unwrap(),
            0
        );
    }
}
