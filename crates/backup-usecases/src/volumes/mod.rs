//! The data of workloads' volumes, moved in the cluster: the PersistentVolumeClaims that
//! pods mount are found ([`discovery`]), each is backed up by a mover pod of the kbackup
//! image beside it ([`mover`], [`manifests`], [`run`]) and one snapshot holds them all
//! ([`backup`]); components are restored into claims the same way ([`restore`]).

pub mod backup;
pub mod discovery;
pub mod hooks;
pub mod manifests;
pub mod mover;
mod pod_runs;
pub mod quiesce;
pub mod restore;
pub mod run;
pub mod target;
pub mod workload_restore;

/// Pods, as listed to find volumes and to follow movers.
pub(crate) fn pod_type() -> backup_core::cluster::ApiResourceType {
    backup_core::cluster::ApiResourceType::namespaced("", "v1", "Pod", "pods")
}
