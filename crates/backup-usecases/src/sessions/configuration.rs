//! A BackupConfiguration and a BackupStorage kept as declared: the configuration's status,
//! its accounts, one CronJob per session (suspended while it is paused, gone with its
//! session), its finished BackupSessions beyond each session's history limit deleted; a
//! storage's status from a real probe.

use super::objects::{CONFIGURATION, SESSION, account, cron_job};
use super::plan::read;
use super::reconcile::{OperatorSettings, Requeue, kind_type, list_all, sessions_in, write_status};
use super::run::{size_bytes, size_text};
use crate::configuration_status::configuration_status;
use crate::storage_resource::storage_status;
use backup_api::{BackupConfiguration, BackupStorage, Repository, RepositoryUsage, StoragePhase};
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

/// The Repository objects, in any namespace, whose storage is `namespace/name`.
async fn repositories_in<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    name: &str,
) -> Result<Vec<RepositoryUsage>, ClusterError> {
    let repositories = kind_type("Repository", "repositories");
    let mut found: Vec<RepositoryUsage> = list_all(cluster, &repositories, None, None)
        .await?
        .into_iter()
        .filter_map(|r| serde_json::from_value::<Repository>(r).ok())
        .filter(|r| {
            let own = r.metadata.namespace.clone().unwrap_or_default();
            r.spec.storage_ref.name == name && r.spec.storage_ref.namespace_or(&own) == namespace
        })
        .map(|r| RepositoryUsage {
            name: r.metadata.name.clone().unwrap_or_default(),
            namespace: r.metadata.namespace.clone().unwrap_or_default(),
            path: r.spec.directory.clone(),
            size: r.status.as_ref().and_then(|s| s.size.clone()),
        })
        .collect();
    found.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(found)
}

/// Probes the storage `namespace/name`, lists the repositories using it, and writes both
/// on it.
pub async fn reconcile_storage<C: ResourceStore + ConfigObjects + ?Sized>(
    cluster: &C,
    namespace: &str,
    name: &str,
) -> Result<Requeue, ClusterError> {
    let Ok(storage) = read::<BackupStorage, _>(cluster, "BackupStorage", namespace, name).await
    else {
        return Ok(Requeue::OnChange);
    };
    let mut status = storage_status(cluster, namespace, &storage.spec).await;
    status.repositories = repositories_in(cluster, namespace, name).await?;
    let sizes: Vec<u64> = status
        .repositories
        .iter()
        .filter_map(|r| r.size.as_deref().and_then(size_bytes))
        .collect();
    status.total_size = (!sizes.is_empty()).then(|| size_text(sizes.iter().sum()));
    let again = match status.phase {
        Some(StoragePhase::Ready) => Duration::from_secs(600),
        _ => Duration::from_secs(60),
    };
    let object = serde_json::to_value(&storage).unwrap_or(Value::Null);
    write_status(cluster, "BackupStorage", object, json!(status)).await?;
    Ok(Requeue::After(again))
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::testing::FakeCluster;

    #[tokio::test]
    async fn a_storage_lists_the_repositories_that_use_it_from_any_namespace() {
        let cluster = FakeCluster::new();
        cluster.serve(backup_api::GROUP, backup_api::VERSION, "Repository", true);
        let repository = |namespace: &str, name: &str, storage: serde_json::Value| {
            json!({"apiVersion": backup_api::API_VERSION, "kind": "Repository",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"storageRef": storage, "directory": name,
                    "encryptionSecret": {"name": "password"}}})
        };
        let mut web = repository("apps", "web", json!({"name": "minio", "namespace": "ops"}));
        web["status"] = json!({"size": "1.5 MiB"});
        cluster.insert(&web);
        cluster.insert(&repository("ops", "own", json!({"name": "minio"})));
        cluster.insert(&repository("apps", "elsewhere", json!({"name": "minio"})));
        cluster.insert(&repository(
            "apps",
            "other",
            json!({"name": "azure", "namespace": "ops"}),
        ));
        let found = repositories_in(&cluster, "ops", "minio").await.unwrap();
        let names: Vec<String> = found
            .iter()
            .map(|r| format!("{}/{} {}", r.namespace, r.name, r.path))
            .collect();
        assert_eq!(names, ["apps/web web", "ops/own own"]);
        assert_eq!(found[0].size.as_deref(), Some("1.5 MiB"), "its size");
    }
}
