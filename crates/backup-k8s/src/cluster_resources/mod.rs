//! Cluster resources: collecting the selected objects as manifest records (discovery, paged
//! LISTs with bounded concurrency, RBAC refusals reported per type), and restoring them
//! (plan diffed against the live cluster, dependency waves with readiness waits, namespace
//! mapping, existing-resource policy, owner references re-linked, a report per kind).

mod collect;
mod restore;

pub use collect::{CollectOptions, CollectPlan, Collected, ResourceCollector};
pub use restore::{
    ClusterRestore, ExistingPolicy, KindCounts, PlanCounts, PlannedObject, RestoreOptions,
    RestoreOutcome, RestorePlanner,
};
