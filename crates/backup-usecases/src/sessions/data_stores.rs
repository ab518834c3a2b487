//! The StackState data-store tasks of a session, as its Job does them: the installation in
//! the target's namespace loaded as the `kbackup` command loads it; StackGraph's own backup
//! Job run as sts-backup runs it, the settings and VictoriaMetrics backups run as the
//! installation's own CronJobs run them (a Job made from the CronJob now), an Elasticsearch
//! snapshot taken into the configured snapshot repository. What they write goes where the
//! installation keeps it (restorable by sts-backup and kbackup alike), not into the
//! session's repository: the Snapshot object records its names as the snapshot.

use super::plan::SessionPlan;
use super::report::{RetentionOutcome, SessionReport};
use crate::stackstate::{ConfigSource, DataStore, EsSnapshotRequest, Installation, backup_failure};
use backup_api::{BackupTask, ComponentStatus, SnapshotPhase, TaskName};
use backup_core::NoProgress;
use backup_core::cluster::{Cluster, JobState};
use backup_core::stackstate::DEFAULT_CONFIG_NAME;
use backup_storage::StorageOptions;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a data store's Job is waited for at most: the session's own deadline (its Job's)
/// stops it sooner when it has one.
const JOB_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The task parameter naming the CronJob a settings or VictoriaMetrics backup runs.
pub const CRONJOB_PARAM: &str = "cronJob";

/// Whether `task` backs up one of StackState's data stores.
pub fn is_data_store(task: TaskName) -> bool {
    !matches!(task, TaskName::ManifestBackup | TaskName::VolumeBackup)
}

/// The parameter `task` cannot do without, when it lacks it: VictoriaMetrics' backups have
/// no CronJob the chart names, so the task names one.
pub fn missing_param(task: &BackupTask) -> Option<&'static str> {
    let named = task.params.get(CRONJOB_PARAM).map(String::as_str);
    (task.name == TaskName::VictoriaMetricsBackup
        && DataStore::VictoriaMetrics.backup_cronjob(named).is_none())
    .then_some(CRONJOB_PARAM)
}

/// Why a retention policy deletes no StackState backup.
const NOT_APPLIED: &str = "StackState's backups are kept by the installation's own expiry (the chart's retention of StackGraph archives, its settings and VictoriaMetrics jobs, Elasticsearch's snapshot lifecycle policy): kbackup deletes none of them";

/// Runs the data-store tasks of `plan` at `now`; never fails: what went wrong is in the
/// report. The snapshot is the archive written.
pub async fn back_up_data_stores<C: Cluster + Clone>(
    cluster: &C,
    plan: &SessionPlan,
    now: DateTime<Utc>,
) -> SessionReport {
    let namespace = plan.target.namespace.clone().unwrap_or_default();
    let mut report = SessionReport {
        snapshot_time: Some(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        ..SessionReport::default()
    };
    let mut written = Vec::new();
    for task in plan.tasks.iter().filter(|t| is_data_store(t.name)) {
        let started = Instant::now();
        let (phase, error) = match back_up(cluster, &namespace, task, now).await {
            Ok(name) => {
                written.push(name);
                ("Succeeded", None)
            }
            Err(error) => ("Failed", Some(error)),
        };
        report.error = report.error.or_else(|| error.clone());
        report.components.insert(
            component(task.name).to_owned(),
            ComponentStatus {
                phase: phase.to_owned(),
                duration: Some(format!("{:.2}s", started.elapsed().as_secs_f64())),
                size: None,
                error,
            },
        );
    }
    report.snapshot_id = (!written.is_empty()).then(|| written.join(","));
    if !plan.retention.is_empty() {
        report.retention = Some(RetentionOutcome {
            not_applied: Some(NOT_APPLIED.to_owned()),
            ..RetentionOutcome::default()
        });
    }
    report.total_components = report.components.len() as u32;
    report.phase = Some(match report.error {
        None if report.snapshot_id.is_some() => SnapshotPhase::Succeeded,
        _ => SnapshotPhase::Failed,
    });
    report
}

/// Backs up the data store of `task` in the installation of `namespace`: the name of what
/// it wrote (an archive, a snapshot), or why it could not.
async fn back_up<C: Cluster + Clone>(
    cluster: &C,
    namespace: &str,
    task: &BackupTask,
    now: DateTime<Utc>,
) -> Result<String, String> {
    let source = ConfigSource {
        configmap: param(&task.params, "configMap"),
        secret: param(&task.params, "secret"),
    };
    let installation = Installation::load(cluster.clone(), namespace, &source, None)
        .await
        .map_err(|e| e.to_string())?;
    match task.name {
        TaskName::StackgraphBackup => {
            let endpoint = task.params.get("storageEndpoint").map(String::as_str);
            let backup = installation
                .stackgraph_backup(endpoint, now)
                .map_err(|e| e.to_string())?;
            let outcome = backup.run(JOB_WAIT).await.map_err(|e| e.to_string())?;
            written_by(
                &outcome.job,
                &outcome.job_state,
                outcome.archive,
                component(task.name),
            )
        }
        TaskName::SettingsBackup | TaskName::VictoriaMetricsBackup => {
            let data_store = cronjob_store(task.name);
            let choice = data_store
                .backup_cronjob(task.params.get(CRONJOB_PARAM).map(String::as_str))
                .ok_or_else(|| format!("parameter {CRONJOB_PARAM} is required"))?;
            let endpoint = task.params.get("storageEndpoint").cloned();
            let backup = installation
                .cronjob_backup(
                    data_store,
                    &choice,
                    StorageOptions::from_lookup(|_| None),
                    endpoint,
                )
                .await
                .map_err(|e| e.to_string())?;
            let outcome = backup.run(JOB_WAIT).await.map_err(|e| e.to_string())?;
            written_by(
                &outcome.job,
                &outcome.job_state,
                outcome.archives.join(","),
                component(task.name),
            )
        }
        TaskName::ElasticsearchSnapshot => {
            let url = task.params.get("elasticsearchUrl").map(String::as_str);
            let connection = installation
                .connect_elasticsearch(url, None)
                .await
                .map_err(|e| e.to_string())?;
            let request = EsSnapshotRequest {
                name: None,
                indices: task.params.get("indices").cloned(),
                wait: true,
                partial: false,
            };
            let taken = installation
                .take_es_snapshot(&connection, request, &NoProgress)
                .await
                .map_err(|e| e.to_string())?;
            match taken.info {
                Some(info) if info.state == "SUCCESS" => Ok(taken.name),
                Some(info) => Err(format!(
                    "snapshot {} ended {}: {}",
                    taken.name,
                    info.state,
                    info.failures.join("; ")
                )),
                None => Err(format!("snapshot {} was not waited for", taken.name)),
            }
        }
        TaskName::ManifestBackup | TaskName::VolumeBackup => {
            Err(format!("{} is not a data store", component(task.name)))
        }
    }
}

/// What a backup Job wrote, or why it is no backup.
fn written_by(job: &str, state: &JobState, wrote: String, store: &str) -> Result<String, String> {
    match backup_failure(job, state, &wrote, store) {
        Some(failure) => Err(failure),
        None => Ok(wrote),
    }
}

/// The data store whose catalog a CronJob's backup adds to.
fn cronjob_store(task: TaskName) -> DataStore {
    match task {
        TaskName::VictoriaMetricsBackup => DataStore::VictoriaMetrics,
        _ => DataStore::Settings,
    }
}

/// The component a task's data store is recorded under.
fn component(task: TaskName) -> &'static str {
    match task {
        TaskName::StackgraphBackup => "stackgraph",
        TaskName::SettingsBackup => "settings",
        TaskName::VictoriaMetricsBackup => "victoria-metrics",
        TaskName::ElasticsearchSnapshot => "elasticsearch",
        TaskName::ManifestBackup => "manifests",
        TaskName::VolumeBackup => "volumes",
    }
}

/// A parameter naming an object of the installation, its default the chart's name.
fn param(params: &BTreeMap<String, String>, key: &str) -> String {
    params
        .get(key)
        .cloned()
        .unwrap_or_else(|| DEFAULT_CONFIG_NAME.to_owned())
}
