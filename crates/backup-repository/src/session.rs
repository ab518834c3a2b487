//! A backup session: any number of byte streams (a dump, or every file of a tree) cut into
//! chunks, hashed, compressed and sealed on worker threads, packed together, the packs
//! uploaded a few at a time, and an index object written every few packs, so a backup killed
//! half-way leaves indexed packs that the next backup reuses.
//!
//! Memory stays bounded whatever the data: a read window of two maximum chunks, at most
//! `2 x workers` chunks being encoded, the open pack and [`UPLOADS`] packs being uploaded.

use crate::blob::seal_chunk;
use crate::chunking::chunk_boundaries;
use crate::crypto::ChunkId;
use crate::pack::PackBuilder;
use crate::repository::{Repository, RepositoryError};
use crate::stream::{BackupStats, Index, IndexFile, IndexedPack, PACK_TARGET, pack_key};
use backup_core::ObjectStorageExt;
use bytes::Bytes;
use futures::StreamExt;
use futures::io::{AsyncRead, AsyncReadExt};
use futures::stream::{FuturesOrdered, FuturesUnordered};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// Packs uploaded at the same time.
pub const UPLOADS: usize = 4;
/// An index object is written after this many packs (and at the end).
pub const INDEX_EVERY: usize = 8;

/// A chunk after its worker: its id, plaintext length, and its stored form when it is new.
type Encoded = (ChunkId, usize, Option<Vec<u8>>);

/// Chunks written by one backup; see the module documentation.
pub struct BackupSession {
    repo: Repository,
    known: Arc<Index>,
    added: Arc<Mutex<HashSet<ChunkId>>>,
    workers: usize,
    pack: PackBuilder,
    uploads: FuturesUnordered<JoinHandle<Result<(IndexedPack, u64), RepositoryError>>>,
    unindexed: Vec<IndexedPack>,
    indexed: Vec<IndexedPack>,
    stats: BackupStats,
}

/// A stream as stored: its chunk ids (hex) in order and its length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredStream {
    /// Chunk ids, hex, in order.
    pub chunks: Vec<String>,
    /// Bytes.
    pub size: u64,
}

impl BackupSession {
    /// A session over what `index` already holds; `workers` chunks are encoded in parallel.
    pub fn new(repo: &Repository, index: Index, workers: usize) -> Self {
        Self {
            repo: repo.clone(),
            known: Arc::new(index),
            added: Arc::default(),
            workers: workers.max(1),
            pack: PackBuilder::default(),
            uploads: FuturesUnordered::new(),
            unindexed: Vec::new(),
            indexed: Vec::new(),
            stats: BackupStats::default(),
        }
    }

    /// What the session wrote so far.
    pub fn stats(&self) -> BackupStats {
        self.stats
    }

    /// Whether a chunk is stored (before this session, or by it).
    pub fn contains(&self, id: &ChunkId) -> bool {
        self.known.contains(id) || self.added.lock().expect("added chunks").contains(id)
    }

    /// Stores a stream read to its end, `on_bytes` called as input is consumed.
    pub async fn add_stream(
        &mut self,
        mut reader: impl AsyncRead + Unpin,
        mut on_bytes: impl FnMut(u64),
    ) -> Result<StoredStream, RepositoryError> {
        let params = self.repo.config().chunker;
        let window = 2 * params.max_size as usize;
        let mut buffer: Vec<u8> = Vec::with_capacity(window.min(1 << 20));
        let mut stored = StoredStream::default();
        let mut in_flight = FuturesOrdered::new();
        let mut at_end = false;
        while !at_end || !buffer.is_empty() {
            while !at_end && buffer.len() < window {
                let start = buffer.len();
                buffer.resize(window, 0);
                let n = reader
                    .read(&mut buffer[start..])
                    .await
                    .map_err(backup_core::StorageError::from)?;
                buffer.truncate(start + n);
                at_end = n == 0;
                on_bytes(n as u64);
            }
            let mut boundaries = chunk_boundaries(&buffer, params);
            // Until the end, the last cut may depend on bytes not read yet: keep it for later.
            if !at_end {
                boundaries.pop();
            }
            let consumed = boundaries.last().map(|(o, l)| o + l).unwrap_or(0);
            for (offset, length) in boundaries {
                in_flight.push_back(self.encode(buffer[offset..offset + length].to_vec()));
                while in_flight.len() >= 2 * self.workers {
                    let done = in_flight.next().await.expect("a chunk in flight")?;
                    self.take(done?, &mut stored).await?;
                }
            }
            buffer.drain(..consumed);
        }
        while let Some(done) = in_flight.next().await {
            self.take(done??, &mut stored).await?;
        }
        Ok(stored)
    }

    /// Hashes a chunk on a worker thread and, unless it is stored already, encodes it.
    fn encode(&self, data: Vec<u8>) -> JoinHandle<Result<Encoded, RepositoryError>> {
        let (key, known, added) = (
            self.repo.key().clone(),
            self.known.clone(),
            self.added.clone(),
        );
        let level = self.repo.config().compression_level;
        tokio::task::spawn_blocking(move || {
            let id = key.chunk_id(&data);
            let new = !known.contains(&id) && added.lock().expect("added chunks").insert(id);
            let stored = new
                .then(|| seal_chunk(&key, &id, &data, level))
                .transpose()?;
            Ok((id, data.len(), stored))
        })
    }

    async fn take(
        &mut self,
        (id, length, encoded): Encoded,
        stream: &mut StoredStream,
    ) -> Result<(), RepositoryError> {
        stream.chunks.push(id.to_hex());
        stream.size += length as u64;
        self.stats.chunks += 1;
        match encoded {
            None => self.stats.deduplicated += 1,
            Some(blob) => {
                self.pack.add(id, &blob, length);
                if self.pack.len() >= PACK_TARGET {
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
        let (builder, repo) = (std::mem::take(&mut self.pack), self.repo.clone());
        self.uploads.push(tokio::spawn(async move {
            let key = repo.key().clone();
            let (id, bytes, blobs) =
                tokio::task::spawn_blocking(move || builder.finish(&key)).await??;
            let size = bytes.len() as u64;
            repo.storage()
                .put_bytes(&pack_key(&id), Bytes::from(bytes))
                .await?;
            Ok((IndexedPack { id, blobs }, size))
        }));
        Ok(())
    }

    async fn collect_upload(&mut self) -> Result<(), RepositoryError> {
        if let Some(done) = self.uploads.next().await {
            let (pack, size) = done??;
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
        let ids: Vec<&str> = packs.iter().map(|p| p.id.as_str()).collect();
        let name = format!("index/{}", blake3::hash(ids.join(",").as_bytes()).to_hex());
        let file = IndexFile { packs };
        let plain = serde_json::to_vec(&file).expect("index serializes");
        let sealed = self.repo.key().seal(&plain, name.as_bytes())?;
        self.repo
            .storage()
            .put_bytes(&name, Bytes::from(sealed))
            .await?;
        self.indexed.extend(file.packs);
        Ok(())
    }

    /// Uploads what is left and indexes it; returns the index with this session's packs.
    pub async fn finish(mut self) -> Result<(Index, BackupStats), RepositoryError> {
        self.seal_pack().await?;
        while !self.uploads.is_empty() {
            self.collect_upload().await?;
        }
        self.write_index().await?;
        let mut index = Arc::try_unwrap(self.known).unwrap_or_else(|shared| (*shared).clone());
        for pack in self.indexed {
            index.add_pack(pack);
        }
        Ok((index, self.stats))
    }
}
