//! A RestoreSession's work, as its Job does it: the snapshot's manifests restored with their
//! claims filled from the volume components asked for before the workloads start (the
//! application restore), or the volume components restored into the running target
//! workload; and a report per component.

use super::plan::{MANIFESTS, RestorePlan};
use crate::cluster::{ApplicationOutcome, plan_application, restore_application};
use crate::sessions::report::SessionReport;
use crate::volumes::manifests::MoverSettings;
use crate::volumes::target::WorkloadRef;
use crate::volumes::workload_restore::{WorkloadRestoreRequest, restore_into_workload};
use backup_api::{ComponentStatus, ExistingObjects, SnapshotPhase};
use backup_core::cluster::{JobControl, PodExec, ResourceStore, SecretValue};
use backup_core::resources::{NamespaceMapping, ResourceFilter};
use backup_core::{ObjectStorage, Phase, Progress};
use backup_k8s::cluster_resources::{ExistingPolicy, RestoreOptions};
use backup_repository::{Repository, SnapshotFile};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The API group of kbackup's own objects: never restored (a BackupSession would run again,
/// a Snapshot would name data retention removed).
const OWN_GROUP: &str = "kbackup.io";

/// Does `plan` from the repository at `storage` (opened with `password`), with `mover` for
/// volumes; never fails: what went wrong is in the report.
pub async fn run_restore<C: ResourceStore + JobControl + PodExec + ?Sized>(
    cluster: &C,
    plan: &RestorePlan,
    storage: Arc<dyn ObjectStorage>,
    password: &SecretValue,
    mover: MoverSettings,
    progress: &dyn Progress,
) -> SessionReport {
    let repository = match Repository::open(storage, password.expose()).await {
        Ok(repository) => repository,
        Err(error) => return SessionReport::failed(format!("repository: {error}")),
    };
    let snapshots = match repository.snapshots().await {
        Ok(snapshots) => snapshots,
        Err(error) => return SessionReport::failed(format!("listing snapshots: {error}")),
    };
    let Some(file) = snapshots
        .iter()
        .find(|f| f.snapshot.id.to_string() == plan.snapshot_id)
    else {
        return SessionReport::failed(format!(
            "snapshot {} is not in the repository",
            plan.snapshot_id
        ));
    };
    let mover = MoverSettings {
        verify: plan.verify,
        ..mover
    };
    let components = match plan.manifests {
        true => application(cluster, plan, &repository, file, &mover, progress).await,
        false => into_workload(cluster, plan, &repository, mover).await,
    };
    match components {
        Ok(components) => report(plan, components),
        Err(error) => SessionReport {
            snapshot_id: Some(plan.snapshot_id.clone()),
            ..SessionReport::failed(error)
        },
    }
}

/// The report of the components restored: Succeeded when each did.
fn report(plan: &RestorePlan, components: BTreeMap<String, ComponentStatus>) -> SessionReport {
    let failed: Vec<String> = components
        .iter()
        .filter(|(_, c)| c.phase != "Succeeded")
        .map(|(name, c)| format!("{name}: {}", c.error.as_deref().unwrap_or(&c.phase)))
        .collect();
    SessionReport {
        phase: Some(match failed.is_empty() {
            true => SnapshotPhase::Succeeded,
            false => SnapshotPhase::Failed,
        }),
        snapshot_id: Some(plan.snapshot_id.clone()),
        total_components: components.len() as u32,
        components,
        error: (!failed.is_empty()).then(|| failed.join("; ")),
        ..SessionReport::default()
    }
}

/// The restore options of the plan's manifests: the target's namespace only, mapped to
/// `restoreNamespace`, the user's filters, cluster-scoped objects and kbackup's own left out.
pub fn restore_options(plan: &RestorePlan) -> Result<RestoreOptions, String> {
    let options = &plan.manifest_options;
    let source = plan.target.namespace.clone().unwrap_or_default();
    let mapping = match &options.restore_namespace {
        Some(destination) if *destination != source => {
            NamespaceMapping::parse(&[format!("{source}:{destination}")])?
        }
        _ => NamespaceMapping::default(),
    };
    Ok(RestoreOptions {
        mapping,
        filter: ResourceFilter {
            include_namespaces: vec![source],
            include_resources: options.include_resources.clone(),
            exclude_resources: options.exclude_resources.clone(),
            selector: options.label_selector.clone(),
            // The Job's account is granted the namespace (a Role), nothing cluster-wide.
            include_cluster_resources: Some(false),
            ..ResourceFilter::default()
        },
        existing: match options.existing {
            ExistingObjects::Skip => ExistingPolicy::Skip,
            ExistingObjects::Update => ExistingPolicy::Update,
            ExistingObjects::Fail => ExistingPolicy::Fail,
        },
        skip_groups: vec![OWN_GROUP.into()],
        ..RestoreOptions::default()
    })
}

/// The application restore: objects and claims, the claims of the volumes asked for filled,
/// the rest once they are.
async fn application<C: ResourceStore + JobControl + ?Sized>(
    cluster: &C,
    plan: &RestorePlan,
    repository: &Repository,
    file: &SnapshotFile,
    mover: &MoverSettings,
    progress: &dyn Progress,
) -> Result<BTreeMap<String, ComponentStatus>, String> {
    let options = restore_options(plan)?;
    let mut planned = plan_application(repository, file, cluster, &options)
        .await
        .map_err(|e| e.to_string())?;
    let mut components = BTreeMap::new();
    for fill in &mut planned.fills {
        if !plan.volumes.contains(&fill.component) {
            fill.left_alone = Some("not among the components restored".into());
        } else if let Some(why) = &fill.left_alone {
            components.insert(
                fill.component.clone(),
                status(Phase::Failed, Duration::ZERO, Some(why.clone())),
            );
        }
    }
    for volume in &plan.volumes {
        if !planned.fills.iter().any(|f| f.component == *volume) {
            components.insert(
                volume.clone(),
                status(
                    Phase::Failed,
                    Duration::ZERO,
                    Some("its claim is not among the manifests restored".into()),
                ),
            );
        }
    }
    let done = restore_application(&planned, repository, file, cluster, mover, progress)
        .await
        .map_err(|e| e.to_string())?;
    components.insert(MANIFESTS.to_owned(), manifests_status(&done));
    for volume in &done.volumes {
        components.insert(
            volume.component.clone(),
            status(volume.phase, volume.duration, volume.error.clone()),
        );
    }
    Ok(components)
}

/// The manifests' component: failed objects named, or the rest not restored because a claim
/// could not be filled.
fn manifests_status(done: &ApplicationOutcome) -> ComponentStatus {
    let report = &done.objects.report;
    let errors: Vec<String> = report
        .issues
        .iter()
        .filter(|i| i.severity == backup_core::model::Severity::Error)
        .map(|i| format!("{}: {}", i.item, i.message))
        .collect();
    let error = match (done.rest_restored, errors.first()) {
        (false, _) => Some(
            "a claim could not be filled, so the workloads and the rest were not restored".into(),
        ),
        (true, Some(first)) => Some(format!(
            "{} object(s) failed, the first: {first}",
            errors.len()
        )),
        (true, None) => None,
    };
    let phase = match error {
        None => Phase::Succeeded,
        Some(_) => Phase::Failed,
    };
    status(phase, done.objects.duration, error)
}

/// The volumes restored into the running target workload, through its pods' init container.
async fn into_workload<C: ResourceStore + PodExec + ?Sized>(
    cluster: &C,
    plan: &RestorePlan,
    repository: &Repository,
    mover: MoverSettings,
) -> Result<BTreeMap<String, ComponentStatus>, String> {
    let target = WorkloadRef::parse(&format!("{}/{}", plan.target.kind, plan.target.name))
        .map_err(|e| format!("target: {e}"))?;
    let request = WorkloadRestoreRequest {
        snapshot: plan.snapshot_id.clone(),
        among: Default::default(),
        namespace: plan.target.namespace.clone().unwrap_or_default(),
        target,
        components: plan.volumes.clone(),
        mover,
    };
    let done = restore_into_workload(cluster, repository, &request)
        .await
        .map_err(|e| e.to_string())?;
    Ok(done
        .components
        .iter()
        .map(|c| {
            (
                c.component.clone(),
                status(c.phase, c.duration, c.error.clone()),
            )
        })
        .collect())
}

fn status(phase: Phase, duration: Duration, error: Option<String>) -> ComponentStatus {
    ComponentStatus {
        phase: format!("{phase:?}"),
        duration: Some(format!("{:.2}s", duration.as_secs_f64())),
        size: None,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(restore_namespace: Option<&str>) -> RestorePlan {
        let mut plan = crate::restores::plan::sample_plan(restore_namespace);
        plan.manifest_options.existing = ExistingObjects::Update;
        plan
    }

    #[test]
    fn the_manifests_restored_are_the_targets_namespace_mapped_without_kbackups_own() {
        let options = restore_options(&plan(Some("apps-copy"))).unwrap();
        assert_eq!(options.mapping.map("apps"), "apps-copy");
        assert_eq!(options.filter.include_namespaces, ["apps"]);
        assert_eq!(options.filter.include_cluster_resources, Some(false));
        assert_eq!(options.existing, ExistingPolicy::Update);
        assert_eq!(options.skip_groups, ["kbackup.io"]);
        let same = restore_options(&plan(Some("apps"))).unwrap();
        assert!(same.mapping.is_empty());
    }

    #[test]
    fn a_restore_succeeds_only_when_every_component_did() {
        let mut components = BTreeMap::new();
        components.insert(
            MANIFESTS.to_owned(),
            status(Phase::Succeeded, Duration::from_secs(1), None),
        );
        let plan = plan(None);
        assert_eq!(
            report(&plan, components.clone()).phase,
            Some(SnapshotPhase::Succeeded)
        );
        components.insert(
            plan.volumes[0].clone(),
            status(Phase::Failed, Duration::ZERO, Some("mover failed".into())),
        );
        let failed = report(&plan, components);
        assert_eq!(failed.phase, Some(SnapshotPhase::Failed));
        assert_eq!(failed.total_components, 2);
        assert!(failed.error.unwrap().contains("mover failed"));
    }
}
