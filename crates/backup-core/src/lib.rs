//! kbackup's pure domain.
//!
//! This crate holds the types every part of kbackup speaks in ([`Snapshot`], [`Component`],
//! [`RepositoryLocation`], [`RetentionPolicy`], [`Schedule`], plans and reports) and the traits
//! that adapters implement: [`ObjectStorage`] (object stores), [`Cluster`] (Kubernetes),
//! [`RestoreEngine`] (a data store's restore) and [`Progress`] (reporting).
//!
//! It performs no network I/O and depends on no SDK: adapters live in `backup-storage`,
//! `backup-k8s` and `backup-elasticsearch`, and depend on this crate, never the other way.

pub mod cluster;
pub mod engine;
pub mod http;
pub mod location;
pub mod model;
pub mod progress;
pub mod resources;
pub mod retention;
pub mod schedule;
pub mod secret;
pub mod stackstate;
pub mod storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod workflow;
pub mod yaml;

pub use cluster::{Cluster, ClusterError};
pub use engine::{EngineError, RestoreEngine, RestoreState};
pub use location::{LocationError, RepositoryLocation, StorageScheme};
pub use model::{
    Component, ItemIssue, Phase, Plan, PlanItem, PlannedAction, Report, Severity, Snapshot,
    SnapshotId, Totals,
};
pub use progress::{NoProgress, Progress};
pub use retention::{RetentionDecision, RetentionPolicy};
pub use schedule::{Schedule, ScheduleError};
pub use secret::Secret;
pub use storage::{ByteStream, ObjectMeta, ObjectStorage, ObjectStorageExt, StorageError};
