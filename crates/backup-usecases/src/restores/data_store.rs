//! A RestoreSession of one of StackState's data stores, done by the operator through the
//! engine the CLI's restore of it runs. For the Job-based ones (StackGraph, settings,
//! VictoriaMetrics, as `kbackup stackgraph|settings|victoriametrics restore`): the
//! installation's backup configuration loaded from its namespace, the archive chosen (the
//! newest, or the one a Snapshot object recorded), the data store's lock taken and its
//! workloads scaled down, its own restore Job made; each later step looks at that Job, and
//! once it ended the finalize scales the workloads back up, releases the lock and removes
//! the Job. Elasticsearch's goes through its own engine (`elasticsearch`). Nothing is lost to
//! an operator restart: the operation (the Job's or the snapshot's name) is in the status
//! before it starts, the replicas in the workloads' annotations.

use super::elasticsearch::{EsProgress, PreparedEs, follow_es, prepare_es, start_es};
use super::plan::{RestoreRefusal, dependency};
use crate::hooks::run::last_line_of;
use crate::sessions::plan::{PlanError, read};
use crate::sessions::report::SessionReport;
use crate::stackstate::{ArchiveChoice, ConfigSource, DataStore, Installation, SpecOptions};
use backup_api::{
    ComponentStatus, RestoreDependency, RestoreSession, RestoreTask, Snapshot, SnapshotPhase,
};
use backup_core::NoProgress;
use backup_core::cluster::{Cluster, JobState};
use backup_core::engine::RestoreEngine;
use backup_core::stackstate::{DEFAULT_CONFIG_NAME, LatestBy};
use backup_k8s::datastore::{DataStoreSpec, JobRestore, RestorePlan};
use backup_storage::StorageOptions;
use std::collections::BTreeMap;

/// The parameters a data-store restore takes.
const PARAMS: [&str; 4] = ["configMap", "secret", "storageEndpoint", "elasticsearchUrl"];

/// A data store's restore, as validated from its RestoreSession.
#[derive(Debug, Clone, PartialEq)]
pub struct DataStoreRestore {
    /// The task.
    pub task: RestoreTask,
    /// Its component in the status (as its backup session names it).
    pub component: &'static str,
    /// The names a Snapshot object recorded (one is this data store's archive), or `None`
    /// for the newest archive.
    pub archives: Option<Vec<String>>,
    /// The installation's backup configuration.
    pub source: ConfigSource,
    /// The object store's URL, when not the installation's MinIO.
    pub endpoint: Option<String>,
    /// Elasticsearch's URL, when not reached through a port-forward to its Service.
    pub elasticsearch_url: Option<String>,
    /// The installation's namespace (the RestoreSession's).
    pub namespace: String,
}

/// A restore ready to start: what it restores and what follows it.
pub struct PreparedDataStore {
    /// What it runs, in words (`Job stackgraph-restore-... restores sts-backup-....graph`).
    pub executor: String,
    /// What is followed and finalized: the restore Job's name, or the snapshot's.
    pub operation: String,
    work: PreparedWork,
}

/// The engine's part of a prepared restore.
enum PreparedWork {
    /// A data store's own restore Job: its spec and the start's plan.
    Job(Box<(DataStoreSpec, RestorePlan)>),
    /// An Elasticsearch snapshot's restore.
    Elasticsearch(Box<PreparedEs>),
}

/// The data-store task among `tasks`, if any.
pub fn data_store_task(tasks: &[RestoreTask]) -> Option<RestoreTask> {
    tasks.iter().copied().find(|t| t.is_data_store())
}

/// What restoring `task`'s data store destroys, for a warning before it is asked for.
pub fn purge_warning(task: RestoreTask) -> &'static str {
    match store_of(task).0 {
        Some(data_store) => data_store.purge_warning(),
        None => {
            "DELETES the live Elasticsearch indices the snapshot holds and scales their writers down"
        }
    }
}

/// The Job-based data store `task` restores (`None`: Elasticsearch) and its component's
/// name.
fn store_of(task: RestoreTask) -> (Option<DataStore>, &'static str) {
    match task {
        RestoreTask::SettingsRestore => (Some(DataStore::Settings), "settings"),
        RestoreTask::VictoriaMetricsRestore => {
            (Some(DataStore::VictoriaMetrics), "victoria-metrics")
        }
        RestoreTask::ElasticsearchRestore => (None, "elasticsearch"),
        _ => (Some(DataStore::StackGraph), "stackgraph"),
    }
}

/// Validates the data-store restore `session` asks for: alone among its tasks, its target
/// the session's own namespace (where the installation runs), known parameters, and the
/// Snapshot it names (when not `latest`) holding that data store, succeeded.
pub async fn plan_data_store<C: Cluster + ?Sized>(
    cluster: &C,
    session: &RestoreSession,
    task: RestoreTask,
    dependencies: &mut Vec<RestoreDependency>,
) -> Result<DataStoreRestore, RestoreRefusal> {
    let namespace = session.metadata.namespace.clone().unwrap_or_default();
    let spec = &session.spec;
    let invalid = |reason, message: String| RestoreRefusal {
        invalid: true,
        error: PlanError::new(reason, message),
    };
    if spec.tasks.len() > 1 {
        return Err(invalid(
            "TasksUnsupported",
            "a data store's restore is alone in its RestoreSession (it scales the installation down): one RestoreSession per data store".into(),
        ));
    }
    let target = &spec.target;
    let target_namespace = target.namespace.as_deref().unwrap_or(&namespace);
    if target.kind != "Namespace" || target.name != namespace || target_namespace != namespace {
        return Err(invalid(
            "TargetUnsupported",
            format!(
                "a data store is restored into the installation of the RestoreSession's namespace: the target is Namespace {namespace}"
            ),
        ));
    }
    if spec.manifest_options.restore_namespace.is_some() || spec.verify {
        return Err(invalid(
            "OptionsUnsupported",
            "restoreNamespace and verify apply to manifests and volumes, not to a data store's restore Job".into(),
        ));
    }
    if let Some(unknown) = spec.params.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        return Err(invalid(
            "UnknownParameter",
            format!(
                "parameter {unknown} is not one of {} for a data store's restore",
                PARAMS.join(", ")
            ),
        ));
    }
    let mut restore = data_store_restore(session, task);
    let source = &restore.source;
    let config = cluster
        .config_map(&namespace, &source.configmap)
        .await
        .map_err(|e| PlanError::new("ClusterUnavailable", e.to_string()))?;
    dependencies.push(dependency(
        "ConfigMap",
        &source.configmap,
        &namespace,
        config.is_some(),
    ));
    if config.is_none() {
        return Err(PlanError::new(
            "BackupConfigurationNotFound",
            format!(
                "ConfigMap {namespace}/{} (the installation's backup configuration) not found",
                source.configmap
            ),
        )
        .into());
    }
    let name = spec.data_source.snapshot.as_str();
    if name != "latest" {
        let component = restore.component;
        restore.archives =
            Some(recorded_archives(cluster, &namespace, name, component, dependencies).await?);
    }
    Ok(restore)
}

/// The data-store restore `session`'s `task` asks for, as far as its spec says (the newest
/// archive; [`plan_data_store`] reads the Snapshot it names).
pub fn data_store_restore(session: &RestoreSession, task: RestoreTask) -> DataStoreRestore {
    let (_, component) = store_of(task);
    let param = |key: &str| session.spec.params.get(key).cloned();
    DataStoreRestore {
        task,
        component,
        archives: None,
        source: ConfigSource {
            configmap: param("configMap").unwrap_or_else(|| DEFAULT_CONFIG_NAME.to_owned()),
            secret: param("secret").unwrap_or_else(|| DEFAULT_CONFIG_NAME.to_owned()),
        },
        endpoint: param("storageEndpoint"),
        elasticsearch_url: param("elasticsearchUrl"),
        namespace: session.metadata.namespace.clone().unwrap_or_default(),
    }
}

/// The names Snapshot `name` recorded, when its `component` succeeded.
async fn recorded_archives<C: Cluster + ?Sized>(
    cluster: &C,
    namespace: &str,
    name: &str,
    component: &str,
    dependencies: &mut Vec<RestoreDependency>,
) -> Result<Vec<String>, RestoreRefusal> {
    let found: Result<Snapshot, PlanError> = read(cluster, "Snapshot", namespace, name).await;
    dependencies.push(dependency("Snapshot", name, namespace, found.is_ok()));
    let snapshot = found?;
    let succeeded = snapshot
        .status
        .as_ref()
        .and_then(|s| s.components.get(component))
        .is_some_and(|c| c.phase == "Succeeded");
    let names: Vec<String> = snapshot
        .spec
        .snapshot_id
        .iter()
        .flat_map(|id| id.split(','))
        .map(str::to_owned)
        .collect();
    if !succeeded || names.is_empty() {
        return Err(RestoreRefusal {
            invalid: true,
            error: PlanError::new(
                "NothingToRestore",
                format!("Snapshot {name} holds no {component} backup that succeeded"),
            ),
        });
    }
    Ok(names)
}

/// Chooses the archive (or snapshot) and plans the start: refused when it is not there or
/// the data store's lock is held by another restore.
pub async fn prepare_data_store<C: Cluster + Clone>(
    cluster: &C,
    restore: &DataStoreRestore,
) -> Result<PreparedDataStore, String> {
    let Some(data_store) = store_of(restore.task).0 else {
        let (snapshot, prepared) = prepare_es(cluster, restore).await?;
        return Ok(PreparedDataStore {
            executor: format!("Elasticsearch restores snapshot {snapshot}"),
            operation: snapshot,
            work: PreparedWork::Elasticsearch(Box::new(prepared)),
        });
    };
    let installation =
        Installation::load(cluster.clone(), &restore.namespace, &restore.source, None)
            .await
            .map_err(|e| e.to_string())?;
    let choice = match &restore.archives {
        None => ArchiveChoice::Latest(LatestBy::Name),
        Some(names) => ArchiveChoice::AnyOf(names),
    };
    let prepared = installation
        .prepare_restore(
            data_store,
            choice,
            SpecOptions::default(),
            StorageOptions::from_lookup(|_| None),
            restore.endpoint.clone(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let engine = JobRestore::new(cluster, &restore.namespace, prepared.spec.clone());
    let plan = engine
        .plan(&prepared.request)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(refused) = &plan.refused {
        return Err(refused.clone());
    }
    let job = engine.operation(&plan);
    Ok(PreparedDataStore {
        executor: format!("Job {job} restores {}", plan.archive),
        operation: job,
        work: PreparedWork::Job(Box::new((prepared.spec, plan))),
    })
}

/// Takes the lock, scales the workloads down and starts the restore (the data store's Job,
/// or Elasticsearch's restore of the snapshot); the workloads scaled down
/// (`name (replicas)`). A failed start scaled back up what it scaled down.
pub async fn start_data_store<C: Cluster + Clone>(
    cluster: &C,
    restore: &DataStoreRestore,
    prepared: PreparedDataStore,
) -> Result<Vec<String>, String> {
    let (spec, plan) = match prepared.work {
        PreparedWork::Elasticsearch(prepared) => {
            return start_es(cluster, restore, *prepared).await;
        }
        PreparedWork::Job(job) => *job,
    };
    let engine = JobRestore::new(cluster, &restore.namespace, spec);
    let started = engine
        .start(&plan, chrono::Utc::now(), &NoProgress)
        .await
        .map_err(|e| e.to_string())?;
    Ok(started.paused.iter().map(ToString::to_string).collect())
}

/// How a data store's restore ended: the component's report and the workloads scaled back
/// up (`name (replicas)`).
pub struct DataStoreEnd {
    /// The report.
    pub report: SessionReport,
    /// The workloads scaled back up.
    pub scaled_up: Vec<String>,
}

/// Looks at the restore `operation` (a Job, or Elasticsearch's restore of a snapshot):
/// `None` while it runs (unless `stop`: a Job is deleted); once it ended (or is gone),
/// finalizes and reports the component.
pub async fn follow_data_store<C: Cluster + Clone>(
    cluster: &C,
    restore: &DataStoreRestore,
    operation: &str,
    stop: bool,
) -> Option<DataStoreEnd> {
    let end = |report| {
        Some(DataStoreEnd {
            report,
            scaled_up: vec![],
        })
    };
    let Some(data_store) = store_of(restore.task).0 else {
        return match follow_es(cluster, restore, operation, stop).await {
            Ok(EsProgress::Recovering) => None,
            Ok(EsProgress::Over { scaled_up, error }) => Some(DataStoreEnd {
                report: report(restore, error),
                scaled_up,
            }),
            Err(error) => end(failed(restore, error)),
        };
    };
    let job = operation;
    let installation = match Installation::load(
        cluster.clone(),
        &restore.namespace,
        &restore.source,
        None,
    )
    .await
    {
        Ok(installation) => installation,
        Err(error) => return end(failed(restore, format!("{error}"))),
    };
    let endpoint = restore.endpoint.as_deref();
    let spec = match data_store.spec(&installation.config, endpoint, SpecOptions::default()) {
        Ok(spec) => spec,
        Err(error) => return end(failed(restore, format!("{error}"))),
    };
    let engine = JobRestore::new(cluster, &restore.namespace, spec);
    let job = job.to_owned();
    let mut stopped = None;
    match engine.observe(&job).await {
        Ok(state) if !state.is_over() && !stop => return None,
        Ok(state) if !state.is_over() => {
            if let Err(error) = cluster.delete_job(&restore.namespace, &job).await {
                return end(failed(restore, format!("stopping Job {job}: {error}")));
            }
            stopped = Some(format!("Job {job} was stopped at the deadline"));
        }
        Ok(_) => {}
        Err(error) => return end(failed(restore, format!("reading Job {job}: {error}"))),
    }
    let outcome = match engine.finalize(&job).await {
        Ok(outcome) => outcome,
        Err(error) => return end(failed(restore, format!("finalizing Job {job}: {error}"))),
    };
    let scaled_up: Vec<String> = outcome.resumed.iter().map(ToString::to_string).collect();
    let error = stopped.or(match &outcome.job_state {
        Some(JobState::Succeeded) => None,
        Some(JobState::Failed(reason)) => Some(format!(
            "the restore Job {job} failed: {reason}{}",
            last_line_of(&outcome.logs)
                .map(|line| format!(": {line}"))
                .unwrap_or_default()
        )),
        Some(JobState::Running) => Some(format!("the restore Job {job} still runs")),
        None => Some(format!("the restore Job {job} is gone")),
    });
    Some(DataStoreEnd {
        report: report(restore, error),
        scaled_up,
    })
}

/// The report of a restore whose component succeeded (`error: None`) or failed.
fn report(restore: &DataStoreRestore, error: Option<String>) -> SessionReport {
    let component = ComponentStatus {
        phase: match error {
            None => "Succeeded",
            Some(_) => "Failed",
        }
        .into(),
        duration: None,
        size: None,
        error: error.clone(),
    };
    let base = match error {
        None => SessionReport {
            phase: Some(SnapshotPhase::Succeeded),
            ..SessionReport::default()
        },
        Some(error) => SessionReport::failed(error),
    };
    SessionReport {
        total_components: 1,
        components: BTreeMap::from([(restore.component.to_owned(), component)]),
        ..base
    }
}

/// The report of a restore whose component failed with `error`.
fn failed(restore: &DataStoreRestore, error: String) -> SessionReport {
    report(restore, Some(error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_api::API_VERSION;
    use backup_core::cluster::JobControl;
    use backup_core::testing::FakeCluster;
    use futures::FutureExt;
    use serde_json::{Value, json};

    fn cluster() -> FakeCluster {
        let cluster = FakeCluster::new();
        cluster.serve(backup_api::GROUP, backup_api::VERSION, "Snapshot", true);
        cluster.insert(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": DEFAULT_CONFIG_NAME, "namespace": "sts"},
            "data": {"config": "stackgraph: {bucket: graph}"}}));
        for (name, components) in [
            (
                "nightly",
                json!({"stackgraph": {"phase": "Succeeded"}, "settings": {"phase": "Failed"}}),
            ),
            ("settings-only", json!({"settings": {"phase": "Succeeded"}})),
        ] {
            cluster.insert(&json!({"apiVersion": API_VERSION, "kind": "Snapshot",
                "metadata": {"name": name, "namespace": "sts"},
                "spec": {"snapshotId": "sts-backup-20261201-0300.graph,sts-backup-20261201-0300.sty",
                    "repository": "archives", "session": "daily", "backupSession": name},
                "status": {"phase": "Succeeded", "components": components}}));
        }
        cluster
    }

    fn session(change: impl FnOnce(&mut Value)) -> RestoreSession {
        let mut session = json!({"apiVersion": API_VERSION, "kind": "RestoreSession",
            "metadata": {"name": "graph", "namespace": "sts"},
            "spec": {"target": {"kind": "Namespace", "name": "sts"},
                "dataSource": {"snapshot": "latest"},
                "tasks": ["stackgraph-restore"]}});
        change(&mut session);
        serde_json::from_value(session).unwrap()
    }

    fn plan(
        cluster: &FakeCluster,
        session: &RestoreSession,
    ) -> (
        Result<DataStoreRestore, RestoreRefusal>,
        Vec<RestoreDependency>,
    ) {
        let task = data_store_task(&session.spec.tasks).unwrap();
        let mut dependencies = Vec::new();
        let planned = plan_data_store(cluster, session, task, &mut dependencies)
            .now_or_never()
            .unwrap();
        (planned, dependencies)
    }

    #[test]
    fn latest_takes_the_newest_archive_of_the_installation_in_the_session_namespace() {
        let cluster = cluster();
        let (planned, dependencies) = plan(&cluster, &session(|_| {}));
        let restore = planned.unwrap();
        assert_eq!(restore.task, RestoreTask::StackgraphRestore);
        assert_eq!(restore.component, "stackgraph");
        assert_eq!(restore.archives, None, "the newest");
        assert_eq!(restore.namespace, "sts");
        assert_eq!(restore.source.configmap, DEFAULT_CONFIG_NAME);
        assert_eq!(dependencies.len(), 1);
        assert!(dependencies[0].found && dependencies[0].kind == "ConfigMap");
    }

    #[test]
    fn a_snapshot_gives_the_names_it_recorded_when_its_data_store_succeeded() {
        let cluster = cluster();
        let named = session(|s| {
            s["spec"]["dataSource"]["snapshot"] = json!("nightly");
            s["spec"]["params"] = json!({"storageEndpoint": "http://minio:9000"});
        });
        let (planned, dependencies) = plan(&cluster, &named);
        let restore = planned.unwrap();
        assert_eq!(
            restore.archives.unwrap(),
            [
                "sts-backup-20261201-0300.graph",
                "sts-backup-20261201-0300.sty"
            ]
        );
        assert_eq!(restore.endpoint.as_deref(), Some("http://minio:9000"));
        assert!(dependencies.iter().any(|d| d.kind == "Snapshot" && d.found));

        let settings = session(|s| {
            s["spec"]["dataSource"]["snapshot"] = json!("nightly");
            s["spec"]["tasks"] = json!(["settings-restore"]);
        });
        let refusal = plan(&cluster, &settings).0.unwrap_err();
        assert!(refusal.invalid);
        assert!(
            refusal
                .error
                .message
                .contains("no settings backup that succeeded"),
            "{refusal:?}"
        );
        let graph_of_settings = session(|s| {
            s["spec"]["dataSource"]["snapshot"] = json!("settings-only");
        });
        assert_eq!(
            plan(&cluster, &graph_of_settings)
                .0
                .unwrap_err()
                .error
                .reason,
            "NothingToRestore"
        );
    }

    #[test]
    fn wrong_specs_are_refused_before_anything_is_read() {
        let cluster = cluster();
        for (change, reason) in [
            (
                json!({"tasks": ["stackgraph-restore", "manifest-restore"]}),
                "TasksUnsupported",
            ),
            (
                json!({"target": {"kind": "Namespace", "name": "other"}}),
                "TargetUnsupported",
            ),
            (
                json!({"target": {"apiGroup": "apps", "kind": "StatefulSet", "name": "sts"}}),
                "TargetUnsupported",
            ),
            (json!({"verify": true}), "OptionsUnsupported"),
            (
                json!({"manifestOptions": {"restoreNamespace": "elsewhere"}}),
                "OptionsUnsupported",
            ),
            (json!({"params": {"bucket": "x"}}), "UnknownParameter"),
        ] {
            let wrong = session(|s| {
                for (key, value) in change.as_object().unwrap() {
                    s["spec"][key] = value.clone();
                }
            });
            let (planned, dependencies) = plan(&cluster, &wrong);
            let refusal = planned.unwrap_err();
            assert!(refusal.invalid, "{change}");
            assert_eq!(refusal.error.reason, reason, "{change}");
            assert!(dependencies.is_empty(), "{change}");
        }
    }

    /// The installation's configuration for a StackGraph restore (keys in the ConfigMap).
    const CONFIG: &str = r#"
minio: {service: {name: minio, port: 9000}, accessKey: AKIAEXAMPLE, secretKey: very-secret-key}
stackgraph:
  bucket: graph
  restore:
    scaleDownLabelSelector: stackstate.com/connects-to-stackgraph=true
    zookeeperQuorum: zookeeper:2181
    job: {image: backup:1.0, waitImage: wait:1.0}
    pvc: {size: 1Gi}
"#;

    fn at(time: &str) -> chrono::DateTime<chrono::Utc> {
        time.parse().unwrap()
    }

    /// A StackGraph restore started by an operator that was then killed: the lock taken, the
    /// server scaled down, the Job made, the RestoreSession Running with the Job's name and
    /// `deadline`; the Job's name.
    fn started_by_a_killed_operator(cluster: &FakeCluster, deadline: &str) -> String {
        use backup_k8s::datastore::{JobRequest, stackgraph_spec};
        cluster.insert(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": DEFAULT_CONFIG_NAME, "namespace": "sts"},
            "data": {"config": CONFIG}}));
        let label = ("stackstate.com/connects-to-stackgraph", "true");
        cluster.add_workload("sts", "server", 2, &[label], &[]);
        let config =
            backup_core::stackstate::StackStateConfig::from_documents(("ConfigMap", CONFIG), None)
                .unwrap();
        let engine = JobRestore::new(cluster, "sts", stackgraph_spec(&config, None).unwrap());
        let request = JobRequest {
            archive: "sts-backup-20261201-0300.graph".into(),
            access_key: "AKIAEXAMPLE".into(),
            secret_key: backup_core::Secret::new("very-secret-key"),
            run_id: "20261201t100000".into(),
        };
        let plan = engine.plan(&request).now_or_never().unwrap().unwrap();
        let job = engine.operation(&plan);
        engine
            .start(&plan, at("2026-12-01T10:00:00Z"), &NoProgress)
            .now_or_never()
            .unwrap()
            .unwrap();
        assert_eq!(cluster.workload("server").replicas, 0);
        cluster.insert(&json!({"apiVersion": API_VERSION, "kind": "RestoreSession",
            "metadata": {"name": "graph", "namespace": "sts", "uid": "graph-uid",
                "creationTimestamp": "2026-12-01T10:00:00Z"},
            "spec": {"target": {"kind": "Namespace", "name": "sts"},
                "dataSource": {"snapshot": "latest"}, "tasks": ["stackgraph-restore"]},
            "status": {"phase": "Running", "dataStoreOperation": job, "deadline": deadline,
                "totalComponents": 1, "components": {"stackgraph": {"phase": "Pending"}}}}));
        job
    }

    fn step(cluster: &FakeCluster, time: &str) -> Value {
        let settings = crate::sessions::reconcile::OperatorSettings {
            image: "localhost/kbackup:test".into(),
            placement: Default::default(),
            http: None,
        };
        super::super::reconcile::reconcile_restore(cluster, "sts", "graph", &settings, at(time))
            .now_or_never()
            .unwrap()
            .unwrap();
        cluster
            .object("RestoreSession", Some("sts"), "graph")
            .unwrap()["status"]
            .clone()
    }

    fn job_gone(cluster: &FakeCluster, job: &str) -> bool {
        let state = cluster.job_state("sts", job).now_or_never().unwrap();
        state.unwrap().is_none()
    }

    #[test]
    fn a_new_operator_follows_the_job_a_killed_one_started_and_finalizes_it() {
        let cluster = cluster();
        let job = started_by_a_killed_operator(&cluster, "2026-12-01T12:00:00Z");
        let status = step(&cluster, "2026-12-01T10:01:00Z");
        assert_eq!(status["phase"], "Running", "the Job runs: {status}");
        assert_eq!(cluster.workload("server").replicas, 0, "still down");
        cluster.finish_job("sts", &job, JobState::Succeeded);
        let status = step(&cluster, "2026-12-01T10:02:00Z");
        assert_eq!(status["phase"], "Succeeded", "{status}");
        assert_eq!(status["components"]["stackgraph"]["phase"], "Succeeded");
        assert!(
            status["conditions"]
                .to_string()
                .contains("scaled back up: server (2)"),
            "{status}"
        );
        let server = cluster.workload("server");
        assert_eq!(server.replicas, 2);
        assert!(server.annotations.is_empty(), "{:?}", server.annotations);
        assert!(job_gone(&cluster, &job), "the Job removed");
    }

    #[test]
    fn past_its_deadline_a_data_store_restore_stops_its_job_and_scales_back_up() {
        let cluster = cluster();
        let job = started_by_a_killed_operator(&cluster, "2026-12-01T10:30:00Z");
        let status = step(&cluster, "2026-12-01T10:31:00Z");
        assert_eq!(status["phase"], "Failed", "{status}");
        assert!(
            status["components"]["stackgraph"]["error"]
                .as_str()
                .unwrap()
                .contains("stopped at the deadline"),
            "{status}"
        );
        assert_eq!(cluster.workload("server").replicas, 2);
        assert!(job_gone(&cluster, &job), "the Job deleted");
    }

    #[test]
    fn a_missing_configuration_or_snapshot_fails_naming_it() {
        let cluster = cluster();
        let other = session(|s| s["spec"]["params"] = json!({"configMap": "elsewhere"}));
        let (planned, dependencies) = plan(&cluster, &other);
        let refusal = planned.unwrap_err();
        assert!(!refusal.invalid);
        assert!(
            refusal.error.message.contains("sts/elsewhere"),
            "{refusal:?}"
        );
        assert!(!dependencies[0].found);
        let gone = session(|s| s["spec"]["dataSource"]["snapshot"] = json!("gone"));
        let (planned, dependencies) = plan(&cluster, &gone);
        assert!(!planned.unwrap_err().invalid);
        assert!(dependencies.iter().any(|d| d.name == "gone" && !d.found));
    }
}
