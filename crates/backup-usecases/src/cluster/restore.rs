//! A cluster restore planned from a snapshot, and run as a [`RestoreEngine`].

use super::{ManifestsError, read_manifests};
use async_trait::async_trait;
use backup_core::cluster::ResourceStore;
use backup_core::engine::{RestoreEngine, RestoreState};
use backup_core::{ClusterError, Progress};
use backup_k8s::cluster_resources::{
    ClusterRestore, RestoreOptions, RestoreOutcome, RestorePlanner,
};
use backup_repository::{Repository, SnapshotFile};
use chrono::{DateTime, Utc};
use std::time::Duration;

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

/// A snapshot's manifests restored into a cluster, as a [`RestoreEngine`]. This process
/// writes the objects itself, wave by wave, inside `start`: once `start` returns nothing
/// runs on, so `observe` and `wait` report the restore over, and `finalize` has nothing to
/// undo (nothing is locked or scaled). A restore cut short is completed by planning and
/// starting it again: what it wrote is then unchanged, and the rest is created.
pub struct ManifestRestore<'a, C: ResourceStore + ?Sized> {
    repository: &'a Repository,
    file: &'a SnapshotFile,
    cluster: &'a C,
}

impl<'a, C: ResourceStore + ?Sized> ManifestRestore<'a, C> {
    /// The restore of `file`'s manifests from `repository` into `cluster`.
    pub fn new(repository: &'a Repository, file: &'a SnapshotFile, cluster: &'a C) -> Self {
        Self {
            repository,
            file,
            cluster,
        }
    }
}

#[async_trait]
impl<'a, C: ResourceStore + ?Sized> RestoreEngine for ManifestRestore<'a, C> {
    type Request = RestoreOptions;
    type Plan = ClusterRestore<'a, C>;
    type Started = RestoreOutcome;
    type Operation = String;
    type Outcome = ();
    type Error = RestorePlanError;

    async fn plan(
        &self,
        options: &RestoreOptions,
    ) -> Result<ClusterRestore<'a, C>, RestorePlanError> {
        plan_restore(self.repository, self.file, self.cluster, options.clone()).await
    }

    /// The snapshot's id.
    fn operation(&self, _: &ClusterRestore<'a, C>) -> String {
        self.file.snapshot.id.to_string()
    }

    /// Writes every object of the plan; an object that fails is counted in the outcome's
    /// report, the others go on.
    async fn start(
        &self,
        plan: &ClusterRestore<'a, C>,
        _: DateTime<Utc>,
        progress: &dyn Progress,
    ) -> Result<RestoreOutcome, RestorePlanError> {
        Ok(plan.execute(progress).await)
    }

    async fn observe(&self, _: &String) -> Result<RestoreState, RestorePlanError> {
        Ok(RestoreState::Succeeded)
    }

    async fn wait(
        &self,
        _: &String,
        _: Duration,
        _: &dyn Progress,
    ) -> Result<RestoreState, RestorePlanError> {
        Ok(RestoreState::Succeeded)
    }

    async fn finalize(&self, _: &String) -> Result<(), RestorePlanError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{BackupOptions, backup};
    use backup_core::progress::NoProgress;
    use backup_core::resources::{Cleaning, NamespaceMapping, ResourceFilter};
    use backup_core::testing::FakeCluster;
    use serde_json::json;

    fn cluster() -> FakeCluster {
        let cluster = FakeCluster::new();
        cluster.serve("", "v1", "Namespace", false);
        cluster.serve("", "v1", "ConfigMap", true);
        cluster.serve("", "v1", "ServiceAccount", true);
        cluster
    }

    /// A namespace `shop` with a service account and three ConfigMaps.
    fn shop() -> FakeCluster {
        let cluster = cluster();
        cluster.insert(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
        );
        cluster.insert(&json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "runner", "namespace": "shop"}}));
        for name in ["a", "b", "c"] {
            cluster.insert(&json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": "shop"}, "data": {"k": name}}));
        }
        cluster
    }

    /// A repository in memory with one snapshot of `shop`.
    async fn snapshot_of_shop() -> (Repository, SnapshotFile) {
        let repository = crate::test_repository::in_memory().await;
        let options = BackupOptions {
            filter: ResourceFilter {
                include_namespaces: vec!["shop".into()],
                ..ResourceFilter::default()
            },
            cleaning: Cleaning::default(),
            output_dir: None,
            concurrency: 2,
            marks: Default::default(),
        };
        let taken = backup(&repository, &shop(), options, &NoProgress)
            .await
            .unwrap();
        assert_eq!(taken.objects(), 5);
        let file = repository.snapshots().await.unwrap().remove(0);
        (repository, file)
    }

    /// Into namespace `copy`, one object at a time (so that a cut falls between two).
    fn into_copy() -> RestoreOptions {
        RestoreOptions {
            mapping: NamespaceMapping::parse(&["shop:copy".to_owned()]).unwrap(),
            concurrency: 1,
            ..RestoreOptions::default()
        }
    }

    /// The objects of `copy`, as they were written.
    fn copied(cluster: &FakeCluster) -> Vec<String> {
        let mut names = cluster.object_names();
        names.sort();
        names
    }

    #[tokio::test]
    async fn the_manifests_restore_runs_as_an_engine_and_is_over_when_started() {
        let (repository, file) = snapshot_of_shop().await;
        let target = cluster();
        let engine = ManifestRestore::new(&repository, &file, &target);
        let plan = engine.plan(&into_copy()).await.unwrap();
        assert_eq!(plan.counts().create, 5);
        assert_eq!(target.changes(), 0, "planning changes nothing");
        let operation = engine.operation(&plan);
        assert_eq!(operation, file.snapshot.id.to_string());
        let outcome = engine.start(&plan, Utc::now(), &NoProgress).await.unwrap();
        assert_eq!(outcome.totals().created, 5);
        assert_eq!(
            engine.observe(&operation).await.unwrap(),
            RestoreState::Succeeded
        );
        engine.finalize(&operation).await.unwrap();
        let copy = target.object("ConfigMap", Some("copy"), "b").unwrap();
        assert_eq!(copy["data"]["k"], "b");
    }

    #[tokio::test]
    async fn a_restore_cut_short_at_any_change_is_completed_by_running_it_again() {
        let (repository, file) = snapshot_of_shop().await;
        let whole = cluster();
        let engine = ManifestRestore::new(&repository, &file, &whole);
        let plan = engine.plan(&into_copy()).await.unwrap();
        engine.start(&plan, Utc::now(), &NoProgress).await.unwrap();
        let changes = whole.changes();
        assert_eq!(changes, 5);
        for crash in 1..=changes {
            let target = cluster();
            let engine = ManifestRestore::new(&repository, &file, &target);
            let plan = engine.plan(&into_copy()).await.unwrap();
            target.crash_before_change(Some(crash));
            let cut = tokio::time::timeout(
                Duration::from_millis(200),
                engine.start(&plan, Utc::now(), &NoProgress),
            )
            .await;
            assert!(cut.is_err(), "the restore stops at change {crash}");
            target.crash_before_change(None);
            let again = engine.plan(&into_copy()).await.unwrap();
            assert_eq!(again.counts().create + again.counts().unchanged, 5);
            assert_eq!(
                again.counts().unchanged,
                crash - 1,
                "written before the cut"
            );
            let outcome = engine.start(&again, Utc::now(), &NoProgress).await.unwrap();
            assert_eq!(outcome.totals().failed, 0);
            assert_eq!(copied(&target), copied(&whole), "cut at change {crash}");
        }
    }
}
