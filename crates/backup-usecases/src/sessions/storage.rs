//! A BackupStorage kept as declared: its status from a real probe (in the operator for an
//! object store, in a Job mounting the claim for a local storage), probed again ten minutes
//! after a success, a minute after a failure, or when its spec changed; the repositories
//! using it and their total size.

use super::claim_job::{ClaimJob, ClaimJobStep};
use super::objects::owned_by;
use super::plan::read;
use super::reconcile::{OperatorSettings, Requeue, kind_type, list_all, write_status};
use super::run::size_text;
use crate::storage_resource::{probed, storage_access, storage_status};
use backup_api::{
    BackupStorage, BackupStorageStatus, Provider, Repository, RepositoryUsage, StoragePhase,
};
use backup_core::ClusterError;
use backup_core::cluster::{ConfigObjects, JobControl, ObjectRef, ResourceStore};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::time::Duration;

/// How long a Ready storage goes unprobed.
const READY_PROBE: Duration = Duration::from_secs(600);
/// How long a storage that is not Ready goes unprobed.
const NOT_READY_PROBE: Duration = Duration::from_secs(60);

/// Probes the storage `namespace/name` when it is due, lists the repositories using it, and
/// writes both on it. A status that did not change is written unchanged (no new event).
pub async fn reconcile_storage<C: ResourceStore + ConfigObjects + JobControl + ?Sized>(
    cluster: &C,
    namespace: &str,
    name: &str,
    settings: &OperatorSettings,
) -> Result<Requeue, ClusterError> {
    let Ok(storage) = read::<BackupStorage, _>(cluster, "BackupStorage", namespace, name).await
    else {
        return Ok(Requeue::OnChange);
    };
    let previous = storage.status.clone().unwrap_or_default();
    let generation = storage.metadata.generation;
    let mut status = match probe_wait(&previous, generation, Utc::now()) {
        Some(_) => previous.clone(),
        None => {
            let fresh = match storage.spec.storage.provider {
                Provider::Local => match claim_probe(cluster, &storage, settings).await? {
                    Some(status) => status,
                    // The probe Job runs: its end wakes this controller.
                    None => return Ok(Requeue::OnChange),
                },
                _ => storage_status(cluster, namespace, &storage.spec).await,
            };
            BackupStorageStatus {
                observed_generation: generation,
                ..since_unchanged(fresh, &previous)
            }
        }
    };
    status.repositories = repositories_in(cluster, namespace, name).await?;
    let sizes: Vec<u64> = status
        .repositories
        .iter()
        .filter_map(|r| r.size_bytes)
        .collect();
    status.total_size = (!sizes.is_empty()).then(|| size_text(sizes.iter().sum()));
    let again = probe_wait(&status, generation, Utc::now()).unwrap_or(NOT_READY_PROBE);
    let object = serde_json::to_value(&storage).unwrap_or(Value::Null);
    write_status(cluster, "BackupStorage", object, json!(status)).await?;
    Ok(Requeue::After(again))
}

/// How long until the storage is due a probe; `None` when it is due now (never probed, its
/// spec changed, or its last probe is older than its phase's interval).
fn probe_wait(
    status: &BackupStorageStatus,
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Option<Duration> {
    if status.observed_generation != generation {
        return None;
    }
    let last: DateTime<Utc> = status.last_probe_time.as_deref()?.parse().ok()?;
    let interval = match status.phase {
        Some(StoragePhase::Ready) => READY_PROBE,
        _ => NOT_READY_PROBE,
    };
    let age = (now - last).to_std().unwrap_or_default();
    interval.checked_sub(age).filter(|wait| !wait.is_zero())
}

/// `fresh`, its condition keeping the transition time of `previous` when its status and
/// reason did not change (the time says when it last changed).
fn since_unchanged(
    mut fresh: BackupStorageStatus,
    previous: &BackupStorageStatus,
) -> BackupStorageStatus {
    for condition in &mut fresh.conditions {
        let before = previous.conditions.iter().find(|c| {
            c.type_ == condition.type_
                && c.status == condition.status
                && c.reason == condition.reason
        });
        if let Some(before) = before {
            condition
                .last_transition_time
                .clone_from(&before.last_transition_time);
        }
    }
    fresh
}

/// The status a probe Job mounting the local storage's claim gave (`storage check`); `None`
/// while it runs. A claim that does not exist is NotReady without a Job.
async fn claim_probe<C: ResourceStore + ConfigObjects + JobControl + ?Sized>(
    cluster: &C,
    storage: &BackupStorage,
    settings: &OperatorSettings,
) -> Result<Option<BackupStorageStatus>, ClusterError> {
    let namespace = storage.metadata.namespace.clone().unwrap_or_default();
    let name = storage.metadata.name.clone().unwrap_or_default();
    let access = match storage_access(cluster, &namespace, &storage.spec).await {
        Ok(access) => access,
        Err(why) => return Ok(Some(probed(Err(why)))),
    };
    let claim = access.claim.unwrap_or_default();
    let reference = ObjectRef::namespaced("v1", "PersistentVolumeClaim", &namespace, &claim);
    if cluster.get(&reference).await?.is_none() {
        return Ok(Some(probed(Err((
            "ClaimNotFound",
            format!("PersistentVolumeClaim {namespace}/{claim} not found"),
        )))));
    }
    let uid = storage.metadata.uid.clone().unwrap_or_default();
    let job = ClaimJob {
        name: ClaimJob::name_for("probe", &name),
        namespace,
        claim: claim.clone(),
        image: settings.image.clone(),
        args: vec![
            "storage".into(),
            "check".into(),
            "--create".into(),
            access.url,
        ],
        owner: Some(owned_by("BackupStorage", &name, &uid)),
        placement: settings.placement.clone(),
    };
    Ok(match job.step(cluster).await? {
        ClaimJobStep::Running => None,
        ClaimJobStep::Ended(end) if end.succeeded => Some(probed(Ok(format!(
            "write, read, list, conditional create and delete work in claim {claim}"
        )))),
        ClaimJobStep::Ended(end) => Some(probed(Err((
            "ProbeFailed",
            format!(
                "the probe Job in claim {claim} failed: {}",
                end.last_words()
            ),
        )))),
    })
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
            size_bytes: r.status.as_ref().and_then(|s| s.size_bytes),
        })
        .collect();
    found.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(found)
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
        web["status"] = json!({"size": "1.5 MiB", "sizeBytes": 1_572_864});
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
        assert_eq!(found[0].size_bytes, Some(1_572_864));
    }

    fn settings() -> OperatorSettings {
        OperatorSettings {
            image: "kbackup:test".into(),
            placement: Default::default(),
            http: None,
        }
    }

    fn status_of(cluster: &FakeCluster) -> Value {
        cluster.object("BackupStorage", Some("ops"), "nfs").unwrap()["status"].clone()
    }

    #[tokio::test]
    async fn a_local_storage_is_probed_by_a_job_mounting_its_claim_then_left_until_due() {
        let cluster = FakeCluster::new();
        cluster.serve(backup_api::GROUP, backup_api::VERSION, "Repository", true);
        cluster.insert(
            &json!({"apiVersion": backup_api::API_VERSION, "kind": "BackupStorage",
            "metadata": {"name": "nfs", "namespace": "ops", "generation": 1},
            "spec": {"storage": {"provider": "local", "local": {"claimName": "backups"}}}}),
        );
        let settings = settings();
        let step = || reconcile_storage(&cluster, "ops", "nfs", &settings);

        // No claim: NotReady, saying so, and no Job.
        let Requeue::After(wait) = step().await.unwrap() else {
            panic!("probed again later")
        };
        assert!(wait <= NOT_READY_PROBE, "{wait:?}");
        let status = status_of(&cluster);
        assert_eq!(status["phase"], "NotReady");
        assert_eq!(status["conditions"][0]["reason"], "ClaimNotFound");
        assert!(
            cluster
                .object("Job", Some("ops"), "kbackup-probe-nfs")
                .is_none()
        );

        // The claim made, the spec changed: a probe Job; Ready once it completed.
        cluster.insert(&json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "backups", "namespace": "ops"}}));
        let mut storage = cluster.object("BackupStorage", Some("ops"), "nfs").unwrap();
        storage["metadata"]["generation"] = json!(2);
        cluster.insert(&storage);
        assert_eq!(step().await.unwrap(), Requeue::OnChange, "the Job runs");
        let mut job = cluster
            .object("Job", Some("ops"), "kbackup-probe-nfs")
            .unwrap();
        let args = &job["spec"]["template"]["spec"]["containers"][0]["args"];
        assert_eq!(
            args,
            &json!(["storage", "check", "--create", "file:///kbackup/storage"])
        );
        job["status"] = json!({"conditions": [{"type": "Complete", "status": "True"}]});
        cluster.insert(&job);
        let Requeue::After(wait) = step().await.unwrap() else {
            panic!("probed again later")
        };
        assert!(wait > NOT_READY_PROBE && wait <= READY_PROBE, "{wait:?}");
        let status = status_of(&cluster);
        assert_eq!(status["phase"], "Ready", "{status}");
        assert_eq!(status["observedGeneration"], 2);
        assert!(
            cluster
                .object("Job", Some("ops"), "kbackup-probe-nfs")
                .is_none(),
            "the Job is deleted once read"
        );

        // Woken again (its own status written, the Job deleted): not due, no new Job.
        assert!(matches!(step().await.unwrap(), Requeue::After(_)));
        assert!(
            cluster
                .object("Job", Some("ops"), "kbackup-probe-nfs")
                .is_none()
        );
        assert_eq!(status_of(&cluster), status, "the status unchanged");
    }

    #[test]
    fn a_probe_is_due_when_never_made_when_the_spec_changed_or_when_its_interval_passed() {
        let now: DateTime<Utc> = "2026-12-02T10:00:00Z".parse().unwrap();
        let status = |phase, at: &str| BackupStorageStatus {
            phase: Some(phase),
            last_probe_time: Some(at.into()),
            observed_generation: Some(3),
            ..BackupStorageStatus::default()
        };
        assert_eq!(
            probe_wait(&BackupStorageStatus::default(), Some(3), now),
            None
        );
        let ready = status(StoragePhase::Ready, "2026-12-02T09:59:00Z");
        assert_eq!(
            probe_wait(&ready, Some(3), now),
            Some(Duration::from_secs(540))
        );
        assert_eq!(probe_wait(&ready, Some(4), now), None, "the spec changed");
        let failing = status(StoragePhase::NotReady, "2026-12-02T09:59:00Z");
        assert_eq!(probe_wait(&failing, Some(3), now), None);
    }
}
