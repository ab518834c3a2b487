//! The Elasticsearch restore on an in-memory Elasticsearch beside the in-memory cluster:
//! each step, and a crash at each change of the start and of the finalize.

use super::*;
use crate::pattern::IndexPattern;
use crate::recovery::{Recovery, ShardRecovery};
use crate::restore::RestoreRequest;
use crate::snapshots::SnapshotInfo;
use backup_core::NoProgress;
use backup_core::stackstate::ElasticsearchRestore;
use backup_core::testing::FakeCluster;
use futures::FutureExt;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

const REPOSITORY: &str = "sts-backup";
const SELECTOR: &str = "observability.suse.com/scalable-during-es-restore=true";

/// Indices, and a snapshot restore that recovers until the test says it is done. Its changes
/// count in the cluster's sequence, so a crash can fall on any of them.
struct FakeEs<'a> {
    cluster: &'a FakeCluster,
    snapshot_indices: Vec<String>,
    state: Mutex<EsState>,
}

#[derive(Default)]
struct EsState {
    indices: BTreeSet<String>,
    restoring: Option<(String, Vec<String>)>,
    recovered: bool,
    /// The restore is accepted but no shard recovery is listed yet.
    unlisted: bool,
}

impl<'a> FakeEs<'a> {
    fn new(cluster: &'a FakeCluster) -> Self {
        let indices = ["sts_topology", "sts_events", "other"];
        Self {
            cluster,
            snapshot_indices: vec!["sts_events".into(), "sts_topology".into()],
            state: Mutex::new(EsState {
                indices: indices.iter().map(|i| i.to_string()).collect(),
                ..EsState::default()
            }),
        }
    }

    fn list_no_recovery_yet(&self) {
        self.state.lock().unwrap().unlisted = true;
    }

    fn recover(&self) {
        self.state.lock().unwrap().recovered = true;
    }

    /// A live writer makes (`true`) or removes an index.
    fn set_index(&self, name: &str, present: bool) {
        let indices = &mut self.state.lock().unwrap().indices;
        match present {
            true => indices.insert(name.into()),
            false => indices.remove(name),
        };
    }

    fn indices_now(&self) -> BTreeSet<String> {
        self.state.lock().unwrap().indices.clone()
    }

    async fn change(&self, call: String) -> Result<(), EngineError> {
        self.cluster
            .change(call)
            .await
            .map_err(|e| EngineError::Backend(e.to_string()))
    }
}

#[async_trait]
impl RestoreApi for FakeEs<'_> {
    async fn indices(&self) -> Result<Vec<String>, EngineError> {
        Ok(self.indices_now().into_iter().collect())
    }
    async fn rollover(&self, target: &str) -> Result<(), EngineError> {
        self.change(format!("rollover {target}")).await
    }
    async fn delete_index(&self, index: &str) -> Result<(), EngineError> {
        self.change(format!("delete index {index}")).await?;
        self.state.lock().unwrap().indices.remove(index);
        Ok(())
    }
    async fn restore_snapshot(
        &self,
        _: &str,
        snapshot: &str,
        body: &Value,
    ) -> Result<(), EngineError> {
        self.change(format!("restore {snapshot}")).await?;
        let pattern = IndexPattern::parse(body["indices"].as_str().unwrap_or_default());
        let mut state = self.state.lock().unwrap();
        let targets: Vec<String> = self
            .snapshot_indices
            .iter()
            .filter(|i| pattern.matches(i))
            .cloned()
            .collect();
        if let Some(existing) = targets.iter().find(|t| state.indices.contains(*t)) {
            return Err(EngineError::Invalid(format!("index {existing} is open")));
        }
        state.indices.extend(targets.iter().cloned());
        state.restoring = Some((snapshot.to_owned(), targets));
        state.recovered = false;
        Ok(())
    }
    async fn primaries_active(&self, indices: &[String], _: Duration) -> Result<bool, EngineError> {
        let state = self.state.lock().unwrap();
        let restoring = state
            .restoring
            .as_ref()
            .is_some_and(|(_, targets)| targets.iter().any(|t| indices.contains(t)));
        Ok(state.recovered || !restoring)
    }
    async fn recovery(&self, _: &str, active_only: bool) -> Result<Recovery, EngineError> {
        let state = self.state.lock().unwrap();
        let Some((snapshot, targets)) = &state.restoring else {
            return Ok(Recovery::default());
        };
        if state.unlisted || (active_only && state.recovered) {
            return Ok(Recovery::default());
        }
        let shard = |index: &String| ShardRecovery {
            index: index.clone(),
            kind: "snapshot".into(),
            stage: if state.recovered { "done" } else { "index" }.into(),
            repository: REPOSITORY.into(),
            snapshot: snapshot.clone(),
            bytes_recovered: if state.recovered { 10 } else { 4 },
            bytes_total: 10,
        };
        Ok(Recovery {
            shards: targets.iter().map(shard).collect(),
        })
    }
    async fn restoring(&self, _: &str, snapshot: &str) -> Result<usize, EngineError> {
        let state = self.state.lock().unwrap();
        Ok(match &state.restoring {
            Some((restoring, targets)) if restoring == snapshot && !state.recovered => {
                targets.len()
            }
            _ => 0,
        })
    }
    async fn doc_counts(&self, _: &str) -> Result<BTreeMap<String, u64>, EngineError> {
        Ok(BTreeMap::new())
    }
}

fn installation() -> FakeCluster {
    let cluster = FakeCluster::new();
    let label = ("observability.suse.com/scalable-during-es-restore", "true");
    cluster.add_workload("sts", "receiver", 2, &[label], &[]);
    cluster.add_workload("sts", "ui", 1, &[], &[]);
    cluster
}

fn engine<'a>(
    cluster: &'a FakeCluster,
    es: &'a FakeEs<'a>,
) -> EsRestore<'a, FakeCluster, FakeEs<'a>> {
    let settings = ElasticsearchRestore {
        scale_down_label_selector: SELECTOR.into(),
        index_prefix: "sts".into(),
        indices_pattern: "sts*".into(),
        ..ElasticsearchRestore::default()
    };
    EsRestore::new(es, cluster, "sts", REPOSITORY, settings)
}

fn source() -> SnapshotRestore {
    SnapshotRestore {
        snapshot: SnapshotInfo::from_json(&serde_json::json!({"snapshot": "sts-20261130",
            "state": "SUCCESS", "indices": ["sts_events", "sts_topology"]})),
        request: RestoreRequest {
            indices: "sts*".into(),
            allow_partial: false,
            rename: None,
        },
    }
}

/// The plan of [`source`], and its operation.
fn planned(restore: &EsRestore<'_, FakeCluster, FakeEs<'_>>) -> (EsRestorePlan, EsOperation) {
    let plan = done(restore.plan(&source())).unwrap();
    let operation = restore.operation(&plan);
    (plan, operation)
}

fn now() -> DateTime<Utc> {
    "2026-11-30T12:00:00Z".parse().unwrap()
}

fn done<T>(future: impl std::future::Future<Output = T>) -> T {
    future.now_or_never().expect("the fakes never block")
}

/// The workloads run as before and no lock is left.
fn assert_resumed(cluster: &FakeCluster) {
    for (name, replicas) in [("receiver", 2), ("ui", 1)] {
        let workload = cluster.workload(name);
        assert_eq!(workload.replicas, replicas, "{name}");
        assert!(
            workload.annotations.is_empty(),
            "{name}: {:?}",
            workload.annotations
        );
    }
}

#[test]
fn the_plan_names_what_is_deleted_and_scaled_and_changes_nothing() {
    let cluster = installation();
    let es = FakeEs::new(&cluster);
    let restore = engine(&cluster, &es);
    let plan = done(restore.plan(&source())).unwrap();
    assert_eq!(plan.delete, ["sts_events", "sts_topology"]);
    assert_eq!(plan.restore, ["sts_events", "sts_topology"]);
    assert_eq!(plan.scale_down, [("Deployment/receiver".into(), 2)]);
    assert_eq!(plan.refused, None);
    assert_eq!(cluster.changes(), 0);
}

#[test]
fn a_restore_runs_from_start_to_finalize() {
    let cluster = installation();
    let es = FakeEs::new(&cluster);
    let restore = engine(&cluster, &es);
    let (plan, operation) = planned(&restore);
    let started = done(restore.start(&plan, now(), &NoProgress)).unwrap();
    assert_eq!(started.deleted, ["sts_events", "sts_topology"]);
    assert_eq!(cluster.workload("receiver").replicas, 0);
    assert!(matches!(
        done(restore.observe(&operation)).unwrap(),
        RestoreState::Running { .. }
    ));
    let changes = cluster.changes();
    let running = done(restore.finalize(&operation)).unwrap();
    assert_eq!(running.recovering_shards, 2);
    assert_eq!(
        cluster.changes(),
        changes,
        "nothing changes while shards recover"
    );
    let by_name = EsOperation {
        snapshot: operation.snapshot.clone(),
        targets: vec![],
    };
    assert!(!done(restore.observe(&by_name)).unwrap().is_over());

    es.recover();
    assert_eq!(
        done(restore.observe(&operation)).unwrap(),
        RestoreState::Succeeded
    );
    let finalized = done(restore.finalize(&by_name)).unwrap();
    assert_eq!(finalized.resumed.len(), 1);
    assert_resumed(&cluster);
    assert!(es.indices_now().contains("sts_topology"));
    let again = done(restore.finalize(&operation)).unwrap();
    assert!(again.resumed.is_empty());
    assert_resumed(&cluster);
}

#[test]
fn a_look_before_the_recoveries_are_listed_is_not_the_end() {
    let cluster = installation();
    let es = FakeEs::new(&cluster);
    let restore = engine(&cluster, &es);
    let (plan, operation) = planned(&restore);
    done(restore.start(&plan, now(), &NoProgress)).unwrap();
    es.list_no_recovery_yet();
    let state = done(restore.observe(&operation)).unwrap();
    assert!(!state.is_over(), "{state:?}");
}

#[test]
fn a_restore_known_by_name_alone_is_not_over_before_its_recoveries_are_listed() {
    let cluster = installation();
    let es = FakeEs::new(&cluster);
    let restore = engine(&cluster, &es);
    let (plan, operation) = planned(&restore);
    done(restore.start(&plan, now(), &NoProgress)).unwrap();
    es.list_no_recovery_yet();
    let by_name = EsOperation {
        snapshot: operation.snapshot.clone(),
        targets: vec![],
    };
    let state = done(restore.observe(&by_name)).unwrap();
    assert!(!state.is_over(), "{state:?}");
    let early = done(restore.finalize(&by_name)).unwrap();
    assert_eq!(early.recovering_shards, 2);
    assert!(early.resumed.is_empty(), "nothing scaled up mid-restore");
    es.recover();
    assert!(done(restore.observe(&by_name)).unwrap().is_over());
    assert_eq!(done(restore.finalize(&by_name)).unwrap().resumed.len(), 1);
    assert_resumed(&cluster);
}

#[test]
fn a_refused_snapshot_restore_after_the_deletions_keeps_the_workloads_down() {
    let cluster = installation();
    let es = FakeEs::new(&cluster);
    cluster.fail_calls(&["restore "]);
    let restore = engine(&cluster, &es);
    let plan = done(restore.plan(&source())).unwrap();
    let error = done(restore.start(&plan, now(), &NoProgress)).unwrap_err();
    assert!(matches!(error, RestoreError::AfterDelete { .. }), "{error}");
    assert_eq!(cluster.workload("receiver").replicas, 0);
    cluster.fail_calls(&[]);
    done(restore.finalize(&restore.operation(&plan))).unwrap();
    assert_resumed(&cluster);
}

#[test]
fn a_failure_before_any_deletion_scales_back_up_at_once() {
    let cluster = installation();
    let es = FakeEs::new(&cluster);
    cluster.fail_calls(&["delete index sts_events"]);
    let restore = engine(&cluster, &es);
    let plan = done(restore.plan(&source())).unwrap();
    assert!(done(restore.start(&plan, now(), &NoProgress)).is_err());
    assert_resumed(&cluster);
    assert!(
        es.indices_now().contains("sts_topology"),
        "nothing was deleted"
    );
}

#[test]
fn an_index_that_appeared_since_the_plan_stops_the_start_before_any_deletion() {
    let cluster = installation();
    let es = FakeEs::new(&cluster);
    let restore = engine(&cluster, &es);
    let (plan, _) = planned(&restore);
    es.set_index("sts_new", true);
    let error = done(restore.start(&plan, now(), &NoProgress)).unwrap_err();
    assert!(
        error.to_string().contains("sts_new")
            && error.to_string().contains("plan the restore again"),
        "{error}"
    );
    assert_resumed(&cluster);
    assert!(
        es.indices_now()
            .is_superset(&["sts_events".to_owned(), "sts_topology".to_owned()].into())
    );
}

#[test]
fn an_index_gone_since_the_plan_is_not_deleted_again() {
    let cluster = installation();
    let es = FakeEs::new(&cluster);
    let restore = engine(&cluster, &es);
    let (plan, _) = planned(&restore);
    es.set_index("sts_events", false);
    let started = done(restore.start(&plan, now(), &NoProgress)).unwrap();
    assert_eq!(started.deleted, ["sts_topology"]);
}

/// Changes of a clean start, and of the finalize after it.
fn changes_of_a_clean_run() -> (usize, usize) {
    let cluster = installation();
    let es = FakeEs::new(&cluster);
    let restore = engine(&cluster, &es);
    let plan = done(restore.plan(&source())).unwrap();
    done(restore.start(&plan, now(), &NoProgress)).unwrap();
    let start = cluster.changes();
    es.recover();
    done(restore.finalize(&restore.operation(&plan))).unwrap();
    (start, cluster.changes() - start)
}

/// Finalizes from the plan's operation until the restore is over.
fn finalize_to_the_end(
    restore: &EsRestore<'_, FakeCluster, FakeEs<'_>>,
    es: &FakeEs<'_>,
    operation: &EsOperation,
) {
    let outcome = done(restore.finalize(operation)).unwrap();
    if outcome.recovering_shards > 0 {
        es.recover();
        done(restore.finalize(operation)).unwrap();
    }
}

#[test]
fn a_crash_at_any_change_of_the_start_is_finalized_from_the_plan() {
    let (start_changes, _) = changes_of_a_clean_run();
    assert!(
        start_changes >= 5,
        "lock, scale, two deletions, restore: {start_changes}"
    );
    for crash in 1..=start_changes {
        let cluster = installation();
        let es = FakeEs::new(&cluster);
        let restore = engine(&cluster, &es);
        let plan = done(restore.plan(&source())).unwrap();
        let operation = restore.operation(&plan);
        cluster.crash_before_change(Some(crash));
        assert!(
            restore
                .start(&plan, now(), &NoProgress)
                .now_or_never()
                .is_none()
        );
        cluster.crash_before_change(None);
        finalize_to_the_end(&engine(&cluster, &es), &es, &operation);
        assert_resumed(&cluster);
    }
}

#[test]
fn a_crash_at_any_change_of_the_finalize_is_finished_by_the_next() {
    let (start_changes, finalize_changes) = changes_of_a_clean_run();
    assert!(finalize_changes >= 2, "{finalize_changes}");
    for crash in 1..=finalize_changes {
        let cluster = installation();
        let es = FakeEs::new(&cluster);
        let restore = engine(&cluster, &es);
        let plan = done(restore.plan(&source())).unwrap();
        let operation = restore.operation(&plan);
        done(restore.start(&plan, now(), &NoProgress)).unwrap();
        es.recover();
        cluster.crash_before_change(Some(start_changes + crash));
        assert!(restore.finalize(&operation).now_or_never().is_none());
        cluster.crash_before_change(None);
        finalize_to_the_end(&engine(&cluster, &es), &es, &operation);
        assert_resumed(&cluster);
        let indices = es.indices_now();
        assert!(indices.contains("sts_events") && indices.contains("sts_topology"));
    }
}
