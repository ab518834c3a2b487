//! Snapshot objects: written last (the commit point of a backup), listed, deleted.

use crate::repository::{Repository, RepositoryError};
use crate::sealed::{MAX_SMALL_OBJECT, Opened};
use crate::stream::StreamContent;
use backup_core::{Snapshot, SnapshotId};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A snapshot object: the snapshot and the content of its components.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotFile {
    /// Metadata.
    pub snapshot: Snapshot,
    /// Stream components' chunks.
    pub streams: Vec<StreamContent>,
    /// Tree components (absent in snapshots without any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trees: Vec<crate::tree::TreeContent>,
}

/// Snapshots oldest first.
fn sorted(files: Vec<(String, SnapshotFile)>) -> Vec<SnapshotFile> {
    let mut all: Vec<SnapshotFile> = files.into_iter().map(|(_, file)| file).collect();
    all.sort_by_key(|s| s.snapshot.time);
    all
}

impl Repository {
    /// Writes a snapshot (the commit point: its data and index are already stored).
    pub async fn write_snapshot(
        &self,
        mut file: SnapshotFile,
    ) -> Result<SnapshotId, RepositoryError> {
        let mut plain = serde_json::to_vec(&file.streams).expect("streams serialize");
        if !file.trees.is_empty() {
            plain.extend(serde_json::to_vec(&file.trees).expect("trees serialize"));
        }
        let id_hex =
            blake3::hash(&[plain.as_slice(), file.snapshot.time.to_rfc3339().as_bytes()].concat())
                .to_hex()
                .to_string();
        file.snapshot.id = SnapshotId::parse(&id_hex).expect("hex id");
        let name = format!("snapshots/{id_hex}");
        let sealed = self.key().seal(
            &serde_json::to_vec(&file).expect("snapshot serializes"),
            name.as_bytes(),
        )?;
        self.storage()
            .put_if_absent(&name, Bytes::from(sealed))
            .await?;
        Ok(file.snapshot.id)
    }

    /// Every snapshot that can be read, oldest first (one that cannot is skipped with a
    /// warning; `check` reports it).
    pub async fn snapshots(&self) -> Result<Vec<SnapshotFile>, RepositoryError> {
        Ok(sorted(self.snapshot_files().await?.readable()))
    }

    /// Every snapshot, oldest first, or an error naming one that cannot be read.
    pub(crate) async fn all_snapshots(&self) -> Result<Vec<SnapshotFile>, RepositoryError> {
        Ok(sorted(self.snapshot_files().await?.all()?))
    }

    /// Every object under `snapshots/`, opened.
    pub(crate) async fn snapshot_files(&self) -> Result<Opened<SnapshotFile>, RepositoryError> {
        self.open_all("snapshots/", MAX_SMALL_OBJECT).await
    }

    /// Deletes one snapshot object (its data stays until a prune).
    pub async fn delete_snapshot(&self, id: &SnapshotId) -> Result<(), RepositoryError> {
        self.storage().delete(&format!("snapshots/{id}")).await?;
        Ok(())
    }
}
