//! A BackupConfiguration kept as declared: its status, its accounts, one CronJob per session
//! (suspended while it is paused, gone with its session), its finished BackupSessions beyond
//! each session's history limit deleted.

use super::objects::{CONFIGURATION, SESSION, account, cron_job};
use super::plan::read;
use super::reconcile::{OperatorSettings, Requeue, list_all, sessions_in, write_status};
use crate::configuration_status::configuration_status;
use backup_api::BackupConfiguration;
use backup_core::ClusterError;
use backup_core::cluster::{ApiResourceType, ConfigObjects, ObjectRef, ResourceStore};
use serde_json::{Value, json};
use std::time::Duration;

/// How often a configuration's status is checked again when nothing changed.
const CONFIGURATION_CHECK: Duration = Duration::from_secs(300);

/// Brings the configuration `namespace/name` and what is made for it up to date.
pub async fn reconcile_configuration<C: ResourceStore + ConfigObjects + ?Sized>(
    cluster: &C,
    namespace: &str,
    name: &str,
    settings: &OperatorSettings,
) -> Result<Requeue, ClusterError> {
    let Ok(configuration) =
        read::<BackupConfiguration, _>(cluster, "BackupConfiguration", namespace, name).await
    else {
        return Ok(Requeue::OnChange);
    };
    let status = configuration_status(cluster, namespace, &configuration.spec).await?;
    let object = serde_json::to_value(&configuration).unwrap_or(Value::Null);
    write_status(cluster, "BackupConfiguration", object, json!(status)).await?;
    for purpose in ["trigger", "backup"] {
        for manifest in account(&configuration, purpose) {
            cluster.apply(&manifest, true).await?;
        }
    }
    for session in &configuration.spec.sessions {
        let mut manifest = cron_job(&configuration, session, &settings.image);
        settings
            .placement
            .apply_to(&mut manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]);
        cluster.apply(&manifest, true).await?;
    }
    remove_stale_cron_jobs(cluster, &configuration).await?;
    trim_history(cluster, &configuration).await?;
    Ok(Requeue::After(CONFIGURATION_CHECK))
}

/// Deletes the CronJobs of sessions the configuration no longer has.
async fn remove_stale_cron_jobs<C: ResourceStore + ?Sized>(
    cluster: &C,
    configuration: &BackupConfiguration,
) -> Result<(), ClusterError> {
    let name = configuration.metadata.name.clone().unwrap_or_default();
    let namespace = configuration.metadata.namespace.clone().unwrap_or_default();
    let cron_jobs = ApiResourceType::namespaced("batch", "v1", "CronJob", "cronjobs");
    let selector = format!("{CONFIGURATION}={name}");
    let found = list_all(cluster, &cron_jobs, Some(&namespace), Some(&selector)).await?;
    for cron_job in &found {
        let session = cron_job["metadata"]["labels"][SESSION]
            .as_str()
            .unwrap_or_default();
        if !configuration
            .spec
            .sessions
            .iter()
            .any(|s| s.name == session)
        {
            let job_name = cron_job["metadata"]["name"].as_str().unwrap_or_default();
            cluster
                .delete(&ObjectRef::namespaced(
                    "batch/v1", "CronJob", &namespace, job_name,
                ))
                .await?;
        }
    }
    Ok(())
}

/// Deletes each session's finished BackupSessions beyond its history limit, oldest first
/// (with them go their Jobs, and the Snapshot objects that hold no snapshot).
async fn trim_history<C: ResourceStore + ?Sized>(
    cluster: &C,
    configuration: &BackupConfiguration,
) -> Result<(), ClusterError> {
    let name = configuration.metadata.name.clone().unwrap_or_default();
    let namespace = configuration.metadata.namespace.clone().unwrap_or_default();
    let sessions = sessions_in(cluster, &namespace).await?;
    for session in &configuration.spec.sessions {
        let mut finished: Vec<&Value> = sessions
            .iter()
            .filter(|s| s["spec"]["invoker"]["name"] == name.as_str())
            .filter(|s| s["spec"]["session"] == session.name.as_str())
            .filter(|s| {
                matches!(
                    s["status"]["phase"].as_str(),
                    Some("Succeeded" | "Failed" | "Skipped")
                )
            })
            .collect();
        finished.sort_by(|a, b| {
            let time = |s: &Value| {
                s["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            };
            time(b).cmp(&time(a)).then_with(|| {
                let name = |s: &Value| {
                    s["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                };
                name(b).cmp(&name(a))
            })
        });
        for old in finished.iter().skip(session.session_history_limit as usize) {
            let old_name = old["metadata"]["name"].as_str().unwrap_or_default();
            cluster
                .delete(&ObjectRef::namespaced(
                    backup_api::API_VERSION,
                    "BackupSession",
                    &namespace,
                    old_name,
                ))
                .await?;
        }
    }
    Ok(())
}
