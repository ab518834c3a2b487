//! What to do next, as data. Libraries say which step would help; each front-end words it
//! (the CLI as a command line or a flag, an operator as a condition's message).

use serde::{Deserialize, Serialize};

/// A step a person or an operator can take after a refusal or a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "camelCase")]
pub enum NextStep {
    /// Finish a data store restore: scale its workloads back up from their annotations,
    /// release the lock, clean up.
    #[serde(rename_all = "camelCase")]
    FinalizeRestore {
        /// The data store's namespace.
        namespace: String,
        /// `stackgraph`, `settings`, `victoriametrics` or `elasticsearch`.
        data_store: String,
        /// The restore: its Job's name, or the Elasticsearch snapshot's (`None` when not
        /// known).
        operation: Option<String>,
    },
    /// Remove the restore lock of a namespace's workloads (a stale lock).
    ClearRestoreLock {
        /// The namespace.
        namespace: String,
    },
    /// Delete an object left behind.
    DeleteObject {
        /// Its namespace.
        namespace: String,
        /// Its kind (`Job`, `PersistentVolumeClaim`).
        kind: String,
        /// Its name.
        name: String,
    },
    /// Replace the entries that exist in a restore's target.
    Overwrite,
    /// Restore an Elasticsearch snapshot whose shards partly failed (they come back empty).
    AllowPartialSnapshot,
    /// Replace existing objects that differ from the snapshot.
    UpdateExisting,
}
