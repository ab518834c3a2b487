//! A byte stream (standard input, a database dump) backed up as the one component of a new
//! snapshot.

use crate::snapshot::{SnapshotMarks, commit_stream};
use backup_core::{Component, SnapshotId, Totals};
use backup_repository::{BackupStats, Repository, RepositoryError};
use futures::io::AsyncRead;
use std::time::Instant;

/// What a stream backup stored.
#[derive(Debug, Clone)]
pub struct StreamBackup {
    /// The new snapshot.
    pub id: SnapshotId,
    /// Bytes read.
    pub size: u64,
    /// Chunks, deduplicated chunks, bytes added, packs adopted.
    pub stats: BackupStats,
}

/// Reads `reader` to its end into the repository as component `name`, then commits a
/// snapshot of it with the user's `marks`.
pub async fn back_up_stream(
    repository: &Repository,
    name: &str,
    reader: impl AsyncRead + Unpin,
    marks: SnapshotMarks,
) -> Result<StreamBackup, RepositoryError> {
    let started = Instant::now();
    let (content, stats) = repository.backup_stream(name, reader).await?;
    let size = content.size;
    let component = Component::new(name, "stream").succeeded(size, started.elapsed());
    let totals = Totals {
        items: 1,
        bytes: size,
        added_bytes: stats.added_bytes,
    };
    let (id, _) = commit_stream(
        repository,
        marks,
        Default::default(),
        component,
        content,
        totals,
    )
    .await?;
    Ok(StreamBackup { id, size, stats })
}
