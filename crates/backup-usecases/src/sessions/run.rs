//! A session's work in one repository, as its Job does it: the repository opened (made on
//! the first run), the target's manifests and volumes backed up through the cluster and
//! volume use cases, the retention policy applied, and a report of it all. A session of
//! StackState data stores runs their Jobs instead (`data_stores`).

use super::data_stores::{back_up_data_stores, is_data_store};
use super::plan::SessionPlan;
use super::report::{RetentionOutcome, SessionReport};
use crate::cluster::{BackupOptions, backup, backup_with_volumes};
use crate::snapshot::SnapshotMarks;
use crate::volumes::backup::{VolumeBackupRequest, VolumeOptions, back_up_volumes};
use crate::volumes::discovery::VolumeSelection;
use crate::volumes::hooks::BackupHooks;
use crate::volumes::manifests::MoverSettings;
use crate::volumes::quiesce::Quiesce;
use crate::volumes::target::WorkloadRef;
use backup_api::{ComponentStatus, SnapshotPhase, TaskName};
use backup_core::cluster::{
    Cluster, JobControl, PodExec, ResourceStore, SecretValue, WorkloadControl,
};
use backup_core::model::{Phase, Severity};
use backup_core::resources::{Cleaning, ResourceFilter};
use backup_core::{ObjectStorage, Progress, SnapshotId};
use backup_repository::{ForgetPlan, InitOptions, Repository, RepositoryError};
use futures::TryStreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The label of the configuration (`namespace/name`) on every snapshot a session writes:
/// retention judges only the snapshots of its own configuration.
pub const CONFIGURATION_LABEL: &str = super::objects::CONFIGURATION;
/// The label of the BackupSession on its snapshots.
pub const SESSION_LABEL: &str = super::objects::BACKUP_SESSION;

/// Does `plan` in the repository at `storage` (opened with `password`; made when empty),
/// with `mover` for volumes; never fails: what went wrong is in the report.
pub async fn run_session<C: Cluster + PodExec + Clone>(
    cluster: &C,
    plan: &SessionPlan,
    storage: Arc<dyn ObjectStorage>,
    password: &SecretValue,
    mover: MoverSettings,
    progress: &dyn Progress,
) -> SessionReport {
    if plan.tasks.iter().any(|t| is_data_store(t.name)) {
        return back_up_data_stores(cluster, plan, chrono::Utc::now()).await;
    }
    let repository = match open_or_init(storage.clone(), password).await {
        Ok(repository) => repository,
        Err(error) => return SessionReport::failed(format!("repository: {error}")),
    };
    let (id, error) = match back_up(cluster, plan, &repository, mover, progress).await {
        Ok((id, error)) => (id, error),
        Err(error) => return SessionReport::failed(error),
    };
    let mut report = describe(&repository, id.as_ref(), error).await;
    if !plan.retention.is_empty() && report.phase == Some(SnapshotPhase::Succeeded) {
        let configuration = format!("{}/{}", plan.namespace, plan.configuration);
        report.retention = Some(
            apply_retention(
                &repository,
                &plan.retention,
                &configuration,
                &plan.keep_snapshots,
            )
            .await,
        );
    }
    report.snapshot_count = repository.snapshots().await.ok().map(|s| s.len() as u64);
    report.integrity = repository.check(0).await.ok().map(|c| c.errors.is_empty());
    report.repository_size = stored_bytes(storage.as_ref()).await.ok();
    report
}

/// The decisions, with the snapshots in `verified` (the newest a verifier verified) kept
/// whatever the rules said.
fn keep_verified(
    mut decisions: Vec<backup_core::RetentionDecision>,
    verified: &[String],
) -> Vec<backup_core::RetentionDecision> {
    for decision in decisions
        .iter_mut()
        .filter(|d| verified.contains(&d.id.to_string()))
    {
        decision.keep = true;
        decision.reasons.push("newest verified".into());
    }
    decisions
}

/// The bytes of every object of the repository.
async fn stored_bytes(storage: &dyn ObjectStorage) -> Result<u64, backup_core::StorageError> {
    storage
        .list("")
        .try_fold(0u64, |total, meta| async move { Ok(total + meta.size) })
        .await
}

/// The repository, initialised when the storage holds none yet.
async fn open_or_init(
    storage: Arc<dyn ObjectStorage>,
    password: &SecretValue,
) -> Result<Repository, RepositoryError> {
    match Repository::open(storage.clone(), password.expose()).await {
        Err(RepositoryError::NotARepository(_)) => {
            Repository::init(storage, password.expose(), InitOptions::default()).await
        }
        other => other,
    }
}

/// Runs the tasks; the snapshot written (none when nothing was) and what went wrong in it.
async fn back_up<C: ResourceStore + JobControl + PodExec + WorkloadControl + ?Sized>(
    cluster: &C,
    plan: &SessionPlan,
    repository: &Repository,
    mover: MoverSettings,
    progress: &dyn Progress,
) -> Result<(Option<SnapshotId>, Option<String>), String> {
    let task = |name: TaskName| plan.tasks.iter().find(|t| t.name == name);
    let namespace = plan.target.namespace.clone().unwrap_or_default();
    let marks = SnapshotMarks {
        tags: vec![format!("session:{}", plan.session)],
        labels: vec![
            (
                CONFIGURATION_LABEL.to_owned(),
                format!("{}/{}", plan.namespace, plan.configuration),
            ),
            (SESSION_LABEL.to_owned(), plan.backup_session.clone()),
        ],
    };
    let volume_params = task(TaskName::VolumeBackup).map(|t| &t.params);
    let volume_options = volume_params.map(|params| VolumeOptions {
        mover: mover.clone(),
        hooks: BackupHooks::default(),
        force: false,
        quiesce: match params.get("quiesce").map(String::as_str) {
            Some("scale") => Quiesce::Scale,
            _ => Quiesce::None,
        },
    });
    match task(TaskName::ManifestBackup) {
        Some(manifests) => {
            if plan.target.kind != "Namespace" {
                return Err(format!(
                    "manifest-backup backs up a Namespace, not a {}",
                    plan.target.kind
                ));
            }
            let params = &manifests.params;
            let options = BackupOptions {
                filter: ResourceFilter {
                    include_namespaces: vec![namespace.clone()],
                    include_resources: list(params.get("includeResources")),
                    exclude_resources: list(params.get("excludeResources")),
                    selector: params.get("labelSelector").cloned(),
                    // A session's account reads its namespace only (a Role): cluster
                    // resources only when asked for, and granted by the user.
                    include_cluster_resources: Some(
                        params
                            .get("includeClusterResources")
                            .is_some_and(|v| v == "true"),
                    ),
                    ..ResourceFilter::default()
                },
                cleaning: Cleaning::default(),
                output_dir: None,
                concurrency: 4,
                marks,
            };
            match volume_options {
                Some(volumes) => {
                    let (backup, moved) =
                        backup_with_volumes(repository, cluster, options, &volumes, progress)
                            .await
                            .map_err(|e| e.to_string())?;
                    let error = moved
                        .volumes
                        .iter()
                        .find_map(|v| v.error.clone())
                        .or_else(|| failures(&backup.report));
                    Ok((Some(backup.id), error))
                }
                None => {
                    let backup = backup(repository, cluster, options, progress)
                        .await
                        .map_err(|e| e.to_string())?;
                    let error = failures(&backup.report);
                    Ok((Some(backup.id), error))
                }
            }
        }
        None => {
            let params = volume_params.cloned().unwrap_or_default();
            let workloads = match plan.target.kind.as_str() {
                "Namespace" => Vec::new(),
                kind => vec![
                    WorkloadRef::parse(&format!("{kind}/{}", plan.target.name))
                        .map_err(|e| format!("target: {e}"))?,
                ],
            };
            let request = VolumeBackupRequest {
                selection: VolumeSelection {
                    namespace,
                    workloads,
                    selector: None,
                    include_volumes: list(params.get("includeVolumes")),
                    exclude_volumes: list(params.get("excludeVolumes")),
                },
                options: volume_options.ok_or("the session has no task")?,
                marks,
            };
            let report = back_up_volumes(cluster, repository, &request, progress)
                .await
                .map_err(|e| e.to_string())?;
            let error = report.volumes.iter().find_map(|v| v.error.clone());
            Ok((report.id, error))
        }
    }
}

/// `a, b,c` as a list.
fn list(value: Option<&String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The first thing a cluster backup could not read, with how many there were.
fn failures(report: &backup_core::model::Report) -> Option<String> {
    let failed: Vec<_> = report
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .collect();
    failed.first().map(|first| {
        format!(
            "{} not read, the first: {}: {}",
            failed.len(),
            first.item,
            first.message
        )
    })
}

/// The report of the snapshot `id` as the repository holds it.
async fn describe(
    repository: &Repository,
    id: Option<&SnapshotId>,
    error: Option<String>,
) -> SessionReport {
    let Some(id) = id else {
        return SessionReport::failed(error.unwrap_or_else(|| "nothing was backed up".into()));
    };
    let snapshot = match repository.snapshots().await {
        Ok(files) => files.into_iter().map(|f| f.snapshot).find(|s| &s.id == id),
        Err(e) => return SessionReport::failed(format!("listing snapshots: {e}")),
    };
    let Some(snapshot) = snapshot else {
        return SessionReport::failed(format!("snapshot {id} is not in the repository"));
    };
    let components: BTreeMap<String, ComponentStatus> = snapshot
        .components
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                ComponentStatus {
                    phase: format!("{:?}", c.phase),
                    duration: Some(format!("{:.2}s", c.duration.as_secs_f64())),
                    size: Some(size_text(c.size)),
                    error: c.error.clone(),
                },
            )
        })
        .collect();
    SessionReport {
        phase: Some(match snapshot.phase() {
            Phase::Succeeded => SnapshotPhase::Succeeded,
            _ => SnapshotPhase::Failed,
        }),
        snapshot_id: Some(id.to_string()),
        snapshot_time: Some(
            snapshot
                .time
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        total_components: components.len() as u32,
        components,
        size: Some(size_text(snapshot.totals.added_bytes)),
        error,
        ..SessionReport::default()
    }
}

/// Forgets the snapshots of `configuration` (its label) that `policy` does not keep; the
/// repository's other snapshots (another configuration's, a person's) are not judged. Their
/// data is freed by a later prune.
async fn apply_retention(
    repository: &Repository,
    policy: &backup_core::RetentionPolicy,
    configuration: &str,
    verified: &[String],
) -> RetentionOutcome {
    let forgot = async {
        let own: Vec<_> = repository
            .snapshots()
            .await?
            .into_iter()
            .map(|f| f.snapshot)
            .filter(|s| {
                s.labels.get(CONFIGURATION_LABEL).map(String::as_str) == Some(configuration)
            })
            .collect();
        let plan = ForgetPlan {
            decisions: keep_verified(policy.apply(&own), verified),
        };
        repository.forget(&plan).await?;
        Ok::<_, RepositoryError>(
            plan.removed()
                .map(|d| d.id.short().to_owned())
                .collect::<Vec<_>>(),
        )
    };
    match forgot.await {
        Ok(removed) => RetentionOutcome {
            removed,
            ..RetentionOutcome::default()
        },
        Err(error) => RetentionOutcome {
            error: Some(error.to_string()),
            ..RetentionOutcome::default()
        },
    }
}

/// `12.5 MiB`.
pub fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::new_snapshot;
    use backup_core::{Component, Totals};
    use backup_repository::SnapshotFile;

    async fn write(repository: &Repository, configuration: &str) {
        let mut component = Component::new("manifests", "cluster-resources");
        component.phase = Phase::Succeeded;
        let marks = SnapshotMarks {
            tags: vec![],
            labels: vec![(CONFIGURATION_LABEL.to_owned(), configuration.to_owned())],
        };
        let snapshot = new_snapshot(marks, BTreeMap::new(), vec![component], Totals::default());
        repository
            .write_snapshot(SnapshotFile {
                snapshot,
                streams: vec![],
                trees: vec![],
            })
            .await
            .unwrap();
    }

    #[test]
    fn a_size_text_has_one_decimal_in_its_unit() {
        assert_eq!(size_text(1023), "1023 B");
        assert_eq!(size_text(1536), "1.5 KiB");
        assert_eq!(size_text(3 << 40), "3.0 TiB");
    }

    #[tokio::test]
    async fn retention_judges_only_the_snapshots_of_its_own_configuration() {
        let repository = crate::test_repository::in_memory().await;
        for _ in 0..3 {
            write(&repository, "apps/web").await;
        }
        for _ in 0..2 {
            write(&repository, "apps/other").await;
        }
        let policy = backup_core::RetentionPolicy {
            keep_last: 1,
            ..Default::default()
        };
        let outcome = apply_retention(&repository, &policy, "apps/web", &[]).await;
        assert_eq!((outcome.removed.len(), outcome.error), (2, None));
        let left: Vec<String> = repository
            .snapshots()
            .await
            .unwrap()
            .iter()
            .map(|f| f.snapshot.labels[CONFIGURATION_LABEL].clone())
            .collect();
        assert_eq!(
            left.iter().filter(|c| *c == "apps/other").count(),
            2,
            "{left:?}"
        );
        assert_eq!(left.len(), 3);
    }

    #[tokio::test]
    async fn retention_never_removes_the_newest_verified_snapshot() {
        let repository = crate::test_repository::in_memory().await;
        for _ in 0..4 {
            write(&repository, "apps/web").await;
        }
        let mut files = repository.snapshots().await.unwrap();
        files.sort_by_key(|f| f.snapshot.time);
        let verified = files[1].snapshot.id.to_string();
        let policy = backup_core::RetentionPolicy {
            keep_last: 1,
            ..Default::default()
        };
        let outcome = apply_retention(
            &repository,
            &policy,
            "apps/web",
            std::slice::from_ref(&verified),
        )
        .await;
        assert_eq!((outcome.removed.len(), outcome.error), (2, None));
        let left: Vec<String> = repository
            .snapshots()
            .await
            .unwrap()
            .iter()
            .map(|f| f.snapshot.id.to_string())
            .collect();
        assert!(left.contains(&verified), "{left:?}");
        assert!(
            left.contains(&files[3].snapshot.id.to_string()),
            "the newest, by keepLast"
        );
    }
}
