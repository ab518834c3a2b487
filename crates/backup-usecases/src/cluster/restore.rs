//! A cluster restore planned from a snapshot.

use super::{ManifestsError, read_manifests};
use backup_core::ClusterError;
use backup_core::cluster::ResourceStore;
use backup_k8s::cluster_resources::{ClusterRestore, RestoreOptions, RestorePlanner};
use backup_repository::{Repository, SnapshotFile};

/// Why a cluster restore could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum RestorePlanError {
    /// The snapshot's manifests could not be read.
    #[error(transparent)]
    Manifests(#[from] ManifestsError),
    /// The cluster refused, or the options do not fit the snapshot.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Plans the restore of a snapshot's manifests into a cluster: every record read back and
/// verified, taken by the planner (filters, mapping, spool), then the plan made against the
/// live cluster. Nothing is changed; the plan is shown, then executed.
pub async fn plan_restore<'c, C: ResourceStore + ?Sized>(
    repository: &Repository,
    file: &SnapshotFile,
    cluster: &'c C,
    options: RestoreOptions,
) -> Result<ClusterRestore<'c, C>, RestorePlanError> {
    let mut planner = RestorePlanner::new(options)?;
    read_manifests(repository, file, |record| {
        planner.add(record).map_err(RestorePlanError::from)
    })
    .await?;
    Ok(planner.plan(cluster).await?)
}
