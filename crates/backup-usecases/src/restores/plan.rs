//! What a RestoreSession's Job restores, resolved from the objects the session names: the
//! Snapshot (`latest`: the repository's newest that succeeded), its Repository and storage,
//! the password, the components asked for; and whether each of them was found (seed 004's
//! `dependencies`).

use crate::sessions::plan::{PlanError, read, repository_access, target_in};
use crate::sessions::reconcile::{kind_type, list_all};
use crate::volumes::target::component_matches;
use backup_api::{
    ManifestOptions, Repository, RestoreDependency, RestoreSession, RestoreTask, Snapshot,
    TypedObjectRef,
};
use backup_core::cluster::{ConfigObjects, ResourceStore, SecretValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The component of a snapshot's manifests.
pub const MANIFESTS: &str = crate::cluster::MANIFESTS;

/// A restore, as its Job receives it. It holds no secret: the credentials go to the Job
/// through a Secret of their own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorePlan {
    /// The RestoreSession's namespace.
    pub namespace: String,
    /// The RestoreSession.
    pub restore_session: String,
    /// The repository's URL.
    pub repository_url: String,
    /// The snapshot's id in the repository.
    pub snapshot_id: String,
    /// Where the data goes (its namespace set).
    pub target: TypedObjectRef,
    /// Whether the manifests are restored.
    pub manifests: bool,
    /// The volume components restored, by their names in the snapshot.
    pub volumes: Vec<String>,
    /// Filters, mapping and the existing-object policy of the manifests.
    pub manifest_options: ManifestOptions,
    /// The kbackup image (for volume movers).
    pub image: String,
    /// The claim of a local storage, mounted by the Job and its movers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_claim: Option<String>,
    /// Restored volumes read back and compared with the snapshot.
    #[serde(default)]
    pub verify: bool,
}

impl RestorePlan {
    /// The namespace the target's objects end up in (`restoreNamespace`, or their own).
    pub fn destination(&self) -> String {
        destination_in(&self.manifest_options, &self.target)
    }

    /// The components restored: the manifests first, then the volumes.
    pub fn components(&self) -> Vec<String> {
        let manifests = self.manifests.then(|| MANIFESTS.to_owned());
        manifests.into_iter().chain(self.volumes.clone()).collect()
    }
}

/// A plan, the credentials its Job needs, and the Snapshot object restored. Its Debug shows
/// no credential.
#[derive(Debug, Clone)]
pub struct PlannedRestore {
    /// The plan.
    pub plan: RestorePlan,
    /// The Secret's variables.
    pub credentials: BTreeMap<String, SecretValue>,
}

/// Why a restore cannot run: `invalid` when its spec is wrong (phase Invalid), else something
/// it needs is missing or not ready (phase Failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreRefusal {
    /// The spec is wrong.
    pub invalid: bool,
    /// Why.
    pub error: PlanError,
}

impl RestoreRefusal {
    fn invalid(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            invalid: true,
            error: PlanError {
                reason,
                message: message.into(),
            },
        }
    }
}

impl From<PlanError> for RestoreRefusal {
    fn from(error: PlanError) -> Self {
        Self {
            invalid: false,
            error,
        }
    }
}

/// What planning found: the dependencies (each found or not) and the plan or the refusal.
#[derive(Debug)]
pub struct RestoreResolution {
    /// The objects the restore needs.
    pub dependencies: Vec<RestoreDependency>,
    /// The plan, or why there is none.
    pub planned: Result<PlannedRestore, RestoreRefusal>,
}

/// Resolves what `session` restores; `image` is the kbackup image its Job runs.
pub async fn plan_restore_session<C: ResourceStore + ConfigObjects + ?Sized>(
    cluster: &C,
    session: &RestoreSession,
    image: &str,
) -> RestoreResolution {
    let mut dependencies = Vec::new();
    let planned = resolve(cluster, session, image, &mut dependencies).await;
    RestoreResolution {
        dependencies,
        planned,
    }
}

async fn resolve<C: ResourceStore + ConfigObjects + ?Sized>(
    cluster: &C,
    session: &RestoreSession,
    image: &str,
    dependencies: &mut Vec<RestoreDependency>,
) -> Result<PlannedRestore, RestoreRefusal> {
    let namespace = session.metadata.namespace.clone().unwrap_or_default();
    let spec = &session.spec;
    let target = target_in(&spec.target, &namespace);
    check_target(&target, &namespace)?;
    let (manifests, volumes) = tasks(&spec.tasks);
    if !manifests && target.kind == "Namespace" {
        return Err(RestoreRefusal::invalid(
            "TasksUnsupported",
            "volume-restore alone restores into a StatefulSet or Deployment; add manifest-restore to restore a namespace's claims with their data",
        ));
    }
    if !manifests && spec.manifest_options.restore_namespace.is_some() {
        return Err(RestoreRefusal::invalid(
            "TasksUnsupported",
            "restoreNamespace maps the manifests, which this restore does not restore",
        ));
    }
    let source = &spec.data_source;
    let source_namespace = source
        .namespace
        .clone()
        .unwrap_or_else(|| namespace.clone());
    if source_namespace != namespace {
        return Err(RestoreRefusal::invalid(
            "SourceOutsideNamespace",
            format!(
                "the Repository and Snapshot are read in {source_namespace}; a RestoreSession restores from its own namespace {namespace} (its Job would hold that repository's password and storage keys)"
            ),
        ));
    }
    let snapshot = find_snapshot(cluster, &source_namespace, session, dependencies).await?;
    let snapshot_id = snapshot.spec.snapshot_id.clone().ok_or_else(|| {
        PlanError::new(
            "SnapshotNotWritten",
            format!(
                "Snapshot {} holds no snapshot id (its session wrote none)",
                snapshot.metadata.name.clone().unwrap_or_default()
            ),
        )
    })?;
    let repository_name = snapshot.spec.repository.clone();
    let repository: Option<Repository> =
        read(cluster, "Repository", &source_namespace, &repository_name)
            .await
            .ok();
    dependencies.push(dependency(
        "Repository",
        &repository_name,
        &source_namespace,
        repository.is_some(),
    ));
    let repository = repository.ok_or_else(|| {
        PlanError::new(
            "RepositoryNotFound",
            format!("Repository {source_namespace}/{repository_name} not found"),
        )
    })?;
    let secret = source
        .encryption_secret
        .clone()
        .unwrap_or_else(|| repository.spec.encryption_secret.clone());
    let storage = repository.spec.storage_ref.clone();
    let mut storage_ref = storage.clone();
    storage_ref.namespace = Some(storage.namespace_or(&source_namespace));
    let mut secret_ref = secret.clone();
    secret_ref.namespace = Some(secret.namespace_or(&source_namespace));
    let access = repository_access(
        cluster,
        &namespace,
        &storage_ref,
        &secret_ref,
        &repository.spec.directory,
    )
    .await;
    let storage_found = !matches!(&access, Err(e) if e.reason == "StorageNotFound");
    let secret_found = !matches!(&access, Err(e) if e.reason == "EncryptionSecretUnusable");
    dependencies.push(dependency(
        "BackupStorage",
        &storage_ref.name,
        &storage_ref.namespace_or(&source_namespace),
        storage_found,
    ));
    dependencies.push(dependency(
        "Secret",
        &secret_ref.name,
        &secret_ref.namespace_or(&source_namespace),
        secret_found,
    ));
    let access = access?;
    let available: Vec<String> = snapshot
        .status
        .as_ref()
        .map(|s| s.components.keys().cloned().collect())
        .unwrap_or_default();
    let volumes = match volumes {
        true => select_volumes(&available, &source.components, &target)?,
        false => Vec::new(),
    };
    let manifests = manifests && available.iter().any(|c| c == MANIFESTS);
    if !manifests && volumes.is_empty() {
        return Err(RestoreRefusal::invalid(
            "NothingToRestore",
            "the snapshot holds none of the components and tasks asked for",
        ));
    }
    Ok(PlannedRestore {
        plan: RestorePlan {
            namespace: namespace.clone(),
            restore_session: session.metadata.name.clone().unwrap_or_default(),
            repository_url: access.url,
            snapshot_id,
            target,
            manifests,
            volumes,
            manifest_options: spec.manifest_options.clone(),
            image: image.to_owned(),
            storage_claim: access.claim,
            verify: spec.verify,
        },
        credentials: access.credentials,
    })
}

/// The namespace `session` writes: `restoreNamespace`, or its target's.
pub fn destination(session: &RestoreSession) -> String {
    let namespace = session.metadata.namespace.clone().unwrap_or_default();
    destination_in(
        &session.spec.manifest_options,
        &target_in(&session.spec.target, &namespace),
    )
}

fn destination_in(options: &ManifestOptions, target: &TypedObjectRef) -> String {
    options
        .restore_namespace
        .clone()
        .or_else(|| target.namespace.clone())
        .unwrap_or_default()
}

/// A target kbackup restores into, in the session's own namespace (its Job's account is
/// granted there).
fn check_target(target: &TypedObjectRef, namespace: &str) -> Result<(), RestoreRefusal> {
    if !matches!(
        target.kind.as_str(),
        "Namespace" | "StatefulSet" | "Deployment"
    ) {
        return Err(RestoreRefusal::invalid(
            "TargetKindUnsupported",
            format!(
                "a restore's target is a Namespace, a StatefulSet or a Deployment, not a {}",
                target.kind
            ),
        ));
    }
    let in_namespace = target.namespace.as_deref().unwrap_or_default();
    if in_namespace != namespace {
        return Err(RestoreRefusal::invalid(
            "TargetOutsideNamespace",
            format!(
                "the target is in {in_namespace}; a RestoreSession restores into its own namespace {namespace} (restoreNamespace maps the objects elsewhere)"
            ),
        ));
    }
    Ok(())
}

/// Whether the manifests and the volumes are restored (no task named: both).
fn tasks(tasks: &[RestoreTask]) -> (bool, bool) {
    match tasks {
        [] => (true, true),
        named => (
            named.contains(&RestoreTask::ManifestRestore),
            named.contains(&RestoreTask::VolumeRestore),
        ),
    }
}

/// The Snapshot the data source names, or the newest Succeeded one of its repository.
async fn find_snapshot<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    session: &RestoreSession,
    dependencies: &mut Vec<RestoreDependency>,
) -> Result<Snapshot, RestoreRefusal> {
    let source = &session.spec.data_source;
    if source.snapshot != "latest" {
        let found: Result<Snapshot, PlanError> =
            read(cluster, "Snapshot", namespace, &source.snapshot).await;
        dependencies.push(dependency(
            "Snapshot",
            &source.snapshot,
            namespace,
            found.is_ok(),
        ));
        let snapshot = found?;
        if let Some(repository) = &source.repository
            && *repository != snapshot.spec.repository
        {
            return Err(RestoreRefusal::invalid(
                "SnapshotOfAnotherRepository",
                format!(
                    "Snapshot {} is of repository {}, not {repository}",
                    source.snapshot, snapshot.spec.repository
                ),
            ));
        }
        return Ok(snapshot);
    }
    let Some(repository) = &source.repository else {
        return Err(RestoreRefusal::invalid(
            "RepositoryNotNamed",
            "snapshot: latest needs dataSource.repository",
        ));
    };
    let newest = newest_snapshot(cluster, namespace, repository, |s| {
        s["status"]["phase"] == "Succeeded"
    })
    .await
    .map_err(PlanError::from)?;
    let name = newest
        .as_ref()
        .and_then(|s| s.metadata.name.clone())
        .unwrap_or_else(|| "latest".into());
    dependencies.push(dependency("Snapshot", &name, namespace, newest.is_some()));
    newest.ok_or_else(|| {
        PlanError::new(
            "SnapshotNotFound",
            format!("repository {repository} has no Snapshot that succeeded"),
        )
        .into()
    })
}

/// The newest (by snapshot time) Snapshot of `repository` in `namespace` that `wanted`
/// accepts and that names a snapshot id.
pub(crate) async fn newest_snapshot<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    repository: &str,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> Result<Option<Snapshot>, backup_core::ClusterError> {
    let selector = format!("{}={repository}", crate::sessions::objects::REPOSITORY);
    let snapshots = list_all(
        cluster,
        &kind_type("Snapshot", "snapshots"),
        Some(namespace),
        Some(&selector),
    )
    .await?;
    Ok(snapshots
        .into_iter()
        .filter(|s| wanted(s) && s["spec"]["snapshotId"].is_string())
        .filter_map(|s| serde_json::from_value::<Snapshot>(s).ok())
        .max_by_key(|s| s.status.as_ref().and_then(|s| s.snapshot_time.clone())))
}

/// The volume components of `available` asked for by `wanted` (all of the target's when
/// none is): a component's name, its member or `member/volume`, or `pod-N` for a StatefulSet
/// target's pod N. A workload target restores only its own components; a name that matches
/// none of them is refused.
fn select_volumes(
    available: &[String],
    wanted: &[String],
    target: &TypedObjectRef,
) -> Result<Vec<String>, RestoreRefusal> {
    let workload = match target.kind.as_str() {
        "Namespace" => None,
        kind => Some(format!("{}/{}", kind.to_lowercase(), target.name)),
    };
    let of_target: Vec<&String> = available
        .iter()
        .filter(|c| c.as_str() != MANIFESTS)
        .filter(|c| match &workload {
            Some(workload) => c.contains(&format!("/{workload}/")),
            None => true,
        })
        .collect();
    let wanted: Vec<String> = wanted
        .iter()
        .filter(|w| w.as_str() != MANIFESTS)
        .map(|w| match w.strip_prefix("pod-") {
            Some(ordinal) if target.kind == "StatefulSet" && ordinal.parse::<u32>().is_ok() => {
                format!("{}-{ordinal}", target.name)
            }
            _ => w.clone(),
        })
        .collect();
    if wanted.is_empty() {
        return Ok(of_target.into_iter().cloned().collect());
    }
    if let Some(unknown) = wanted
        .iter()
        .find(|w| !of_target.iter().any(|c| component_matches(c, w)))
    {
        return Err(RestoreRefusal::invalid(
            "ComponentNotFound",
            format!(
                "the snapshot has no volume component {unknown} of the target; it has {}",
                of_target
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(of_target
        .into_iter()
        .filter(|c| wanted.iter().any(|w| component_matches(c, w)))
        .cloned()
        .collect())
}

/// An object a restore needs, found or not.
pub(super) fn dependency(
    kind: &str,
    name: &str,
    namespace: &str,
    found: bool,
) -> RestoreDependency {
    RestoreDependency {
        kind: kind.into(),
        name: name.into(),
        namespace: Some(namespace.into()),
        found,
    }
}

/// A plan of the namespace `apps` into `restore_namespace`, its manifests and pod 0's volume.
#[cfg(test)]
pub(crate) fn sample_plan(restore_namespace: Option<&str>) -> RestorePlan {
    RestorePlan {
        namespace: "apps".into(),
        restore_session: "back".into(),
        repository_url: "s3://b/apps".into(),
        snapshot_id: "ab".repeat(32),
        target: TypedObjectRef {
            api_group: String::new(),
            kind: "Namespace".into(),
            name: "apps".into(),
            namespace: Some("apps".into()),
        },
        manifests: true,
        volumes: vec!["/apps/statefulset/db/db-0/data".into()],
        manifest_options: ManifestOptions {
            restore_namespace: restore_namespace.map(str::to_owned),
            ..ManifestOptions::default()
        },
        image: "kbackup:dev".into(),
        storage_claim: None,
        verify: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts(name: &str) -> TypedObjectRef {
        TypedObjectRef {
            api_group: "apps".into(),
            kind: "StatefulSet".into(),
            name: name.into(),
            namespace: Some("apps".into()),
        }
    }

    fn components() -> Vec<String> {
        [
            MANIFESTS,
            "/apps/statefulset/db/db-0/data",
            "/apps/statefulset/db/db-1/data",
            "/apps/deployment/web/web-data/files",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn pod_n_names_the_volumes_of_a_statefulsets_pod() {
        let picked = select_volumes(&components(), &["pod-0".into()], &sts("db")).unwrap();
        assert_eq!(picked, ["/apps/statefulset/db/db-0/data"]);
        let all = select_volumes(&components(), &[], &sts("db")).unwrap();
        assert_eq!(all.len(), 2, "only the target's own: {all:?}");
        let refused = select_volumes(&components(), &["pod-7".into()], &sts("db")).unwrap_err();
        assert_eq!(
            (refused.invalid, refused.error.reason),
            (true, "ComponentNotFound")
        );
    }

    #[test]
    fn a_namespace_target_restores_every_volume_unless_named() {
        let namespace = TypedObjectRef {
            api_group: String::new(),
            kind: "Namespace".into(),
            name: "apps".into(),
            namespace: Some("apps".into()),
        };
        assert_eq!(
            select_volumes(&components(), &[], &namespace)
                .unwrap()
                .len(),
            3
        );
        let one = select_volumes(
            &components(),
            &["manifests".into(), "web-data/files".into()],
            &namespace,
        )
        .unwrap();
        assert_eq!(one, ["/apps/deployment/web/web-data/files"]);
    }

    #[test]
    fn targets_are_namespaces_and_workloads_of_the_sessions_namespace() {
        let mut elsewhere = sts("db");
        elsewhere.namespace = Some("other".into());
        assert_eq!(
            check_target(&elsewhere, "apps").unwrap_err().error.reason,
            "TargetOutsideNamespace"
        );
        let mut service = sts("db");
        service.kind = "Service".into();
        assert_eq!(
            check_target(&service, "apps").unwrap_err().error.reason,
            "TargetKindUnsupported"
        );
        assert!(check_target(&sts("db"), "apps").is_ok());
        assert_eq!(tasks(&[]), (true, true));
        assert_eq!(tasks(&[RestoreTask::VolumeRestore]), (false, true));
    }
}
