//! The StackState data-store tasks of a session, as its Job does them: the installation in
//! the target's namespace loaded as the `kbackup` command loads it, and each data store's
//! own Job run as sts-backup runs it. The archive goes where the installation keeps its
//! archives (restorable by sts-backup and kbackup alike), not into the session's repository:
//! the Snapshot object records it as the snapshot.

use super::plan::SessionPlan;
use super::report::SessionReport;
use crate::stackstate::{ConfigSource, Installation};
use backup_api::{ComponentStatus, SnapshotPhase, TaskName};
use backup_core::cluster::{Cluster, JobState};
use backup_core::stackstate::DEFAULT_CONFIG_NAME;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a data store's Job is waited for at most: the session's own deadline (its Job's)
/// stops it sooner when it has one.
const JOB_WAIT: Duration = Duration::from_secs(24 * 3600);

/// Whether `task` backs up one of StackState's data stores.
pub fn is_data_store(task: TaskName) -> bool {
    !matches!(task, TaskName::ManifestBackup | TaskName::VolumeBackup)
}

/// Whether the operator runs `task` (the data stores whose backup it runs).
pub fn is_run(task: TaskName) -> bool {
    matches!(
        task,
        TaskName::ManifestBackup | TaskName::VolumeBackup | TaskName::StackgraphBackup
    )
}

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
    for task in plan.tasks.iter().filter(|t| is_data_store(t.name)) {
        let source = ConfigSource {
            configmap: param(&task.params, "configMap"),
            secret: param(&task.params, "secret"),
        };
        let started = Instant::now();
        let outcome = async {
            if task.name != TaskName::StackgraphBackup {
                return Err(format!(
                    "the operator does not back up {} yet",
                    component(task.name)
                ));
            }
            let installation = Installation::load(cluster.clone(), &namespace, &source, None)
                .await
                .map_err(|e| e.to_string())?;
            let endpoint = task.params.get("storageEndpoint").map(String::as_str);
            let backup = installation
                .stackgraph_backup(endpoint, now)
                .map_err(|e| e.to_string())?;
            let outcome = backup.run(JOB_WAIT).await.map_err(|e| e.to_string())?;
            match outcome.job_state {
                JobState::Succeeded => Ok(outcome.archive),
                JobState::Failed(reason) => Err(format!("Job {} failed: {reason}", outcome.job)),
                JobState::Running => Err(format!("Job {} did not end", outcome.job)),
            }
        }
        .await;
        let (phase, error) = match outcome {
            Ok(archive) => {
                report.snapshot_id = Some(archive);
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
    report.total_components = report.components.len() as u32;
    report.phase = Some(match report.error {
        None if report.snapshot_id.is_some() => SnapshotPhase::Succeeded,
        _ => SnapshotPhase::Failed,
    });
    report
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
