//! File contents restored pack by pack: the chunks a restore needs are grouped by the pack
//! holding them, each run of neighbouring chunks is fetched by one streamed ranged read, and
//! every chunk is decoded once and written wherever it goes. One request per pack (not one
//! per file or per few MiB) spares the server partial-block reads and request overhead;
//! memory stays at a few batches per read whatever the pack size.

use super::target::Temp;
use super::{Output, Stamp, write_runs_at, write_whole};
use crate::crypto::MasterKey;
use crate::index::pack_key;
use crate::pack::BlobLocation;
use crate::repository::{Repository, RepositoryError};
use crate::stream::{Span, decode_stored};
use crate::tree::RawPath;
use backup_core::ByteStream;
use backup_core::progress::Progress;
use bytes::{Buf, Bytes, BytesMut};
use futures::TryStreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Needed chunks of a pack further apart than this are fetched by separate reads.
const MAX_GAP: u64 = 1024 * 1024;
/// Chunks decoded and written by one blocking call: up to about this many stored bytes.
const BATCH: u64 = 1024 * 1024;
/// Batches of one read decoded and written while the read goes on.
const BATCHES_AHEAD: usize = 2;

/// Where a decoded chunk is written.
pub(super) enum Destination {
    /// The whole content of a file of one chunk: created, written and stamped at once.
    Whole { path: RawPath, stamp: Stamp },
    /// Part of a file of several chunks, at `offset`.
    Part { file: Arc<PartFile>, offset: u64 },
}

impl Destination {
    fn write(&self, chunk: &[u8], output: &Output) -> Result<(), RepositoryError> {
        match self {
            Self::Whole { path, stamp } => {
                write_whole(output, path, chunk, stamp).map_err(|e| output.local(path, &e))
            }
            Self::Part { file, offset } => file.write(*offset, chunk, output),
        }
    }
}

/// A file of several chunks (or none), created empty under a temporary name before any
/// read: the write that completes it sets its length (trailing holes) and its metadata, and
/// renames it into place.
pub(super) struct PartFile {
    path: RawPath,
    size: u64,
    stamp: Stamp,
    remaining: AtomicUsize,
    temp: OnceLock<Temp>,
}

impl PartFile {
    pub(super) fn new(path: RawPath, size: u64, stamp: Stamp, chunks: usize) -> Self {
        Self {
            path,
            size,
            stamp,
            remaining: AtomicUsize::new(chunks),
            temp: OnceLock::new(),
        }
    }

    /// Creates the file empty; a file of no chunk is complete at once.
    pub(super) fn create(&self, output: &Output) -> Result<(), RepositoryError> {
        let create = || -> std::io::Result<()> {
            let (file, temp) = output.target.create_temp(&self.path)?;
            let temp = self.temp.get_or_init(|| temp);
            if self.remaining.load(Ordering::Acquire) == 0 {
                self.stamp.apply(&file, &output.owners)?;
                drop(file);
                output.commit(temp)?;
            }
            Ok(())
        };
        create().map_err(|e| output.local(&self.path, &e))
    }

    fn write(&self, offset: u64, chunk: &[u8], output: &Output) -> Result<(), RepositoryError> {
        let write = || -> std::io::Result<()> {
            let temp = self
                .temp
                .get()
                .ok_or_else(|| std::io::Error::other("written before it was created"))?;
            let file = output.target.reopen_temp(temp)?;
            write_runs_at(&file, offset, chunk)?;
            if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                file.set_len(self.size)?;
                self.stamp.apply(&file, &output.owners)?;
                drop(file);
                output.commit(temp)?;
            }
            Ok(())
        };
        write().map_err(|e| output.local(&self.path, &e))
    }
}

/// A chunk to fetch and everywhere it goes.
struct Wanted {
    location: BlobLocation,
    to: Vec<Destination>,
}

/// Where a run of chunks lies in their pack: from the first one's start to the last one's
/// end (`chunks` in stored order, never empty).
fn extent(chunks: &[Wanted]) -> (u64, u64) {
    (
        chunks[0].location.offset,
        chunks[chunks.len() - 1].location.end(),
    )
}

/// The chunks a restore needs, by pack (ids borrowed from the index) and stored offset (a
/// chunk needed twice is fetched and decoded once).
#[derive(Default)]
pub(super) struct ReadPlan<'a> {
    packs: BTreeMap<&'a str, BTreeMap<u64, Wanted>>,
}

impl<'a> ReadPlan<'a> {
    /// Writes the chunk at `location` of `pack` to `to`.
    pub(super) fn add(&mut self, pack: &'a str, location: &BlobLocation, to: Destination) {
        self.packs
            .entry(pack)
            .or_default()
            .entry(location.offset)
            .or_insert_with(|| Wanted {
                location: *location,
                to: Vec::new(),
            })
            .to
            .push(to);
    }

    /// The reads: per pack, its needed chunks in stored order, cut where more than
    /// [`MAX_GAP`] bytes lie between two of them.
    pub(super) fn into_reads(self) -> Vec<PackRead<'a>> {
        let mut reads = Vec::new();
        for (pack, chunks) in self.packs {
            let mut current: Vec<Wanted> = Vec::new();
            for wanted in chunks.into_values() {
                if let Some(last) = current.last()
                    && wanted.location.offset > last.location.end() + MAX_GAP
                {
                    reads.push(PackRead {
                        pack,
                        chunks: std::mem::take(&mut current),
                    });
                }
                current.push(wanted);
            }
            reads.push(PackRead {
                pack,
                chunks: current,
            });
        }
        reads
    }
}

/// One ranged read of a pack: neighbouring chunks, in stored order (never empty).
pub(super) struct PackRead<'a> {
    pack: &'a str,
    chunks: Vec<Wanted>,
}

impl PackRead<'_> {
    /// The chunks cut into batches of about [`BATCH`] stored bytes (a larger chunk alone).
    fn batches(self) -> Vec<Vec<Wanted>> {
        let mut batches: Vec<Vec<Wanted>> = Vec::new();
        for wanted in self.chunks {
            match batches.last_mut() {
                Some(batch) if wanted.location.end() - batch[0].location.offset <= BATCH => {
                    batch.push(wanted);
                }
                _ => batches.push(vec![wanted]),
            }
        }
        batches
    }
}

impl Repository {
    /// Fetches a read's chunks by one streamed ranged read and hands them, a batch at a
    /// time, to blocking calls that decode and write them ([`BATCHES_AHEAD`] at once);
    /// returns the bytes written, each batch's also advancing `progress`.
    pub(super) async fn restore_pack_read(
        &self,
        read: PackRead<'_>,
        output: Arc<Output>,
        progress: &dyn Progress,
    ) -> Result<u64, RepositoryError> {
        let (start, end) = extent(&read.chunks);
        let stream = self
            .storage()
            .get(&pack_key(read.pack), Some(start..end))
            .await?;
        let pack: Arc<str> = read.pack.into();
        let body = Body {
            stream,
            piece: Bytes::new(),
            at: start,
            pack: pack.clone(),
        };
        let spans = futures::stream::try_unfold(
            (body, read.batches().into_iter()),
            |(mut body, mut batches)| async move {
                let Some(batch) = batches.next() else {
                    return Ok(None);
                };
                let (start, end) = extent(&batch);
                let span = body.span(start, end).await?;
                Ok(Some(((span, batch), (body, batches))))
            },
        );
        spans
            .map_ok(|(span, batch)| {
                let (key, pack, output) = (self.key().clone(), pack.clone(), output.clone());
                async move {
                    tokio::task::spawn_blocking(move || {
                        write_batch(&key, &pack, span, batch, &output)
                    })
                    .await?
                }
            })
            .try_buffer_unordered(BATCHES_AHEAD)
            .try_fold(0u64, |total, written| {
                progress.advance(written);
                futures::future::ready(Ok(total + written))
            })
            .await
    }
}

/// Decodes a batch's chunks (each checked against its id) and writes each everywhere it
/// goes; returns the bytes written.
fn write_batch(
    key: &MasterKey,
    pack: &str,
    mut span: Span,
    batch: Vec<Wanted>,
    output: &Output,
) -> Result<u64, RepositoryError> {
    let mut written = 0u64;
    for wanted in batch {
        let chunk = decode_stored(
            key,
            &wanted.location,
            pack,
            span.of(&wanted.location, pack)?,
        )?;
        for to in &wanted.to {
            to.write(&chunk, output)?;
            written += chunk.len() as u64;
        }
    }
    Ok(written)
}

/// The body of a ranged read, consumed in order.
struct Body {
    stream: ByteStream,
    /// What is left of the last piece received.
    piece: Bytes,
    /// The pack offset of `piece`'s first byte.
    at: u64,
    pack: Arc<str>,
}

impl Body {
    /// The stored bytes from `start` to `end`, dropping what comes before `start`.
    async fn span(&mut self, start: u64, end: u64) -> Result<Span, RepositoryError> {
        let mut bytes = BytesMut::with_capacity((end - start) as usize);
        while self.at < end {
            if self.piece.is_empty() {
                self.piece = self.stream.try_next().await?.ok_or_else(|| {
                    RepositoryError::Corrupt(format!(
                        "{} ended at byte {} of a read up to {end}",
                        pack_key(&self.pack),
                        self.at
                    ))
                })?;
                continue;
            }
            let available = self.piece.len() as u64;
            let (limit, keep) = if self.at < start {
                (start, false)
            } else {
                (end, true)
            };
            let n = available.min(limit - self.at) as usize;
            if keep {
                bytes.extend_from_slice(&self.piece[..n]);
            }
            self.piece.advance(n);
            self.at += n as u64;
        }
        Ok(Span::new(bytes, start))
    }
}
