//! kbackup's Elasticsearch adapter, on the `elasticsearch` crate: snapshot repository and SLM
//! configuration, snapshots (list, describe, take, delete), and sts-backup's restore workflow
//! (scale down, roll over, delete, restore, follow the recovery, scale up, finalize later).

mod client;
mod configure;
mod engine;
mod pattern;
mod restore;
mod snapshots;

pub use client::{EsClient, ServerInfo};
pub use configure::{Change, ConfigureRequest, repository_request, slm_request};
pub use engine::EsSnapshotEngine;
pub use pattern::IndexPattern;
pub use restore::{
    ELASTICSEARCH, EsFinalizeOutcome, EsRestore, EsRestorePlan, IndexCount, Recovery, Rename,
    RestoreError, RestoreRequest, ShardRecovery, StartedEsRestore, restore_pairs, restore_targets,
};
pub use snapshots::{DOC_COUNTS_METADATA, NewSnapshot, SnapshotInfo, check_restorable};
