//! kbackup's Elasticsearch adapter, on the `elasticsearch` crate: snapshot repository and SLM
//! configuration, snapshots (list, describe, take, delete), and sts-backup's restore workflow
//! (scale down, roll over, delete, restore, follow the recovery, scale up, finalize later).

mod client;
mod configure;
mod engine;
mod indices;
mod pattern;
mod recovery;
mod restore;
mod restore_api;
mod snapshots;

pub use client::{EsClient, ServerInfo};
pub use configure::{Change, ConfigureRequest, repository_request, slm_request};
pub use indices::IndexInfo;
pub use pattern::IndexPattern;
pub use recovery::{Recovery, ShardRecovery};
pub use restore::{
    ELASTICSEARCH, EsFinalizeOutcome, EsOperation, EsRestore, EsRestorePlan, IndexCount, Rename,
    RestoreError, RestoreRequest, SnapshotRestore, StartedEsRestore, restore_pairs,
    restore_targets,
};
pub use restore_api::RestoreApi;
pub use snapshots::{DOC_COUNTS_METADATA, NewSnapshot, SnapshotInfo, check_restorable};
