//! What a BackupSession's Job does in one repository, resolved from the objects the session
//! names: the configuration's session, its backend's storage (where, and the credentials of
//! its Secret), the retention policy and the repository's password.

use super::data_stores::{is_data_store, missing_param};
use crate::configuration_status::may_use;
use crate::credentials::{PasswordSource, read_password};
use crate::restores::plan::newest_snapshot;
use crate::retention_policy::retention_rules;
use crate::storage_resource::storage_access;
use backup_api::{
    API_VERSION, BackupConfiguration, BackupSession, BackupStorage, BackupTask, RetentionPolicy,
    StoragePhase, TypedObjectRef,
};
use backup_core::ClusterError;
use backup_core::cluster::{ConfigObjects, ObjectRef, ResourceStore, SecretValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The variable of the repository's password in a session Job's Secret.
pub const PASSWORD_VARIABLE: &str = "KBACKUP_PASSWORD";

/// A session's work in one repository, as its Job receives it. It holds no secret: the
/// credentials go to the Job through a Secret of their own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionPlan {
    /// The namespace of the configuration and the session.
    pub namespace: String,
    /// The BackupConfiguration.
    pub configuration: String,
    /// The session of it.
    pub session: String,
    /// The BackupSession.
    pub backup_session: String,
    /// The Repository object.
    pub repository: String,
    /// The repository's URL (`s3://bucket/prefix/directory`).
    pub repository_url: String,
    /// What is backed up.
    pub target: TypedObjectRef,
    /// What is done.
    pub tasks: Vec<BackupTask>,
    /// The retention applied after the backup (empty: none).
    pub retention: backup_core::RetentionPolicy,
    /// The kbackup image (for volume movers).
    pub image: String,
    /// The claim of a local storage, which the Job and its movers mount at
    /// [`CLAIM_MOUNT`](crate::storage_resource::CLAIM_MOUNT) (the repository's URL is a
    /// `file://` one below it); none for an object store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_claim: Option<String>,
    /// Snapshot ids the retention keeps whatever its rules say: the repository's newest
    /// snapshot a BackupVerifier verified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_snapshots: Vec<String>,
}

/// A plan and the credentials its Job needs: the object store's variables and the password.
/// Its Debug shows no credential.
#[derive(Debug, Clone)]
pub struct PlannedRepository {
    /// The plan.
    pub plan: SessionPlan,
    /// The BackupStorage (namespace, name).
    pub storage: (String, String),
    /// The Secret's variables.
    pub credentials: BTreeMap<String, SecretValue>,
}

/// Why a session cannot start; `reason` is one CamelCase word for its status condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PlanError {
    /// Why, in one word (`StorageNotReady`).
    pub reason: &'static str,
    /// Why, for a person (never a credential).
    pub message: String,
}

impl PlanError {
    /// A refusal for `reason`.
    pub(crate) fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

impl From<ClusterError> for PlanError {
    fn from(error: ClusterError) -> Self {
        Self::new("ClusterError", error.to_string())
    }
}

/// Resolves what `session` does in each repository of its configuration's session; `image`
/// is the kbackup image its Jobs (and their movers) run.
pub async fn plan_session<C: ResourceStore + ConfigObjects + ?Sized>(
    cluster: &C,
    session: &BackupSession,
    configuration: &BackupConfiguration,
    image: &str,
) -> Result<Vec<PlannedRepository>, PlanError> {
    let namespace = session.metadata.namespace.clone().unwrap_or_default();
    let name = session.metadata.name.clone().unwrap_or_default();
    let configuration_name = configuration.metadata.name.clone().unwrap_or_default();
    let spec = &configuration.spec;
    let session_config = spec
        .sessions
        .iter()
        .find(|s| s.name == session.spec.session)
        .ok_or_else(|| {
            PlanError::new(
                "SessionNotFound",
                format!(
                    "BackupConfiguration {configuration_name} has no session {}",
                    session.spec.session
                ),
            )
        })?;
    check_tasks(&session_config.tasks, &spec.target, &namespace)?;
    let mut planned = Vec::new();
    for repository in &session_config.repositories {
        let backend = spec
            .backends
            .iter()
            .find(|b| b.name == repository.backend)
            .ok_or_else(|| {
                PlanError::new(
                    "BackendNotFound",
                    format!(
                        "repository {} names backend {}, which the configuration lacks",
                        repository.name, repository.backend
                    ),
                )
            })?;
        let access = repository_access(
            cluster,
            &namespace,
            &backend.storage_ref,
            &repository.encryption_secret,
            &repository.directory,
        )
        .await?;
        let policy_namespace = backend.retention_policy.namespace_or(&namespace);
        let policy: RetentionPolicy = read(
            cluster,
            "RetentionPolicy",
            &policy_namespace,
            &backend.retention_policy.name,
        )
        .await?;
        let retention = retention_rules(&policy.spec)
            .map_err(|e| PlanError::new("InvalidRetentionPolicy", e))?;
        let verified = newest_snapshot(cluster, &namespace, &repository.name, |s| {
            s["status"]["verificationStatus"] == "Verified"
        })
        .await?;
        planned.push(PlannedRepository {
            plan: SessionPlan {
                namespace: namespace.clone(),
                configuration: configuration_name.clone(),
                session: session.spec.session.clone(),
                backup_session: name.clone(),
                repository: repository.name.clone(),
                repository_url: access.url,
                target: target_in(&spec.target, &namespace),
                tasks: session_config.tasks.clone(),
                retention,
                image: image.to_owned(),
                storage_claim: access.claim,
                keep_snapshots: verified
                    .and_then(|s| s.spec.snapshot_id)
                    .into_iter()
                    .collect(),
            },
            storage: access.storage,
            credentials: access.credentials,
        });
    }
    Ok(planned)
}

/// How a Job reaches a repository: its URL, the claim it mounts, and the variables of its
/// Secret. Its Debug shows no credential.
#[derive(Debug)]
pub(crate) struct RepositoryAccess {
    /// `s3://bucket/prefix/directory`.
    pub url: String,
    /// The claim of a local storage.
    pub claim: Option<String>,
    /// The BackupStorage (namespace, name).
    pub storage: (String, String),
    /// The object store's variables and the password.
    pub credentials: BTreeMap<String, SecretValue>,
}

/// Resolves how a Job in `namespace` reaches the repository in `directory` of the storage
/// `storage_ref`, opened with the password of `secret`: the storage must allow `namespace`
/// (its usage policy) and be Ready, a claim and the password's Secret must be of the Job's
/// own namespace.
pub(crate) async fn repository_access<C: ResourceStore + ConfigObjects + ?Sized>(
    cluster: &C,
    namespace: &str,
    storage_ref: &backup_api::ObjectRef,
    secret: &backup_api::SecretRef,
    directory: &str,
) -> Result<RepositoryAccess, PlanError> {
    let storage_namespace = storage_ref.namespace_or(namespace);
    let storage: BackupStorage = read(
        cluster,
        "BackupStorage",
        &storage_namespace,
        &storage_ref.name,
    )
    .await?;
    let allowed = may_use(
        cluster,
        storage.spec.usage_policy.as_ref(),
        &storage_namespace,
        namespace,
    )
    .await?;
    if !allowed {
        return Err(PlanError::new(
            "StorageNotAllowed",
            format!(
                "BackupStorage {storage_namespace}/{} may not be used from namespace {namespace} (its usagePolicy)",
                storage_ref.name
            ),
        ));
    }
    let ready = storage.status.as_ref().and_then(|s| s.phase) == Some(StoragePhase::Ready);
    if !ready {
        let why = storage
            .status
            .as_ref()
            .and_then(|s| s.conditions.first())
            .map_or("not probed yet".to_owned(), |c| c.message.clone());
        return Err(PlanError::new(
            "StorageNotReady",
            format!(
                "BackupStorage {storage_namespace}/{} is not ready: {why}",
                storage_ref.name
            ),
        ));
    }
    let access = storage_access(cluster, &storage_namespace, &storage.spec)
        .await
        .map_err(|(reason, message)| PlanError::new(reason, message))?;
    if access.claim.is_some() && storage_namespace != namespace {
        return Err(PlanError::new(
            "ClaimOutsideNamespace",
            format!(
                "BackupStorage {storage_namespace}/{} is a claim, which only pods of namespace {storage_namespace} can mount; this session runs in {namespace}",
                storage_ref.name
            ),
        ));
    }
    let secret_namespace = secret.namespace_or(namespace);
    if secret_namespace != namespace {
        // Its value goes into a Secret of the Job's namespace, readable there.
        return Err(PlanError::new(
            "EncryptionSecretOutsideNamespace",
            format!(
                "the password Secret {secret_namespace}/{} is of another namespace than {namespace}, whose Job would hold it",
                secret.name
            ),
        ));
    }
    let source = PasswordSource::Secret {
        namespace: secret_namespace,
        name: secret.name.clone(),
    };
    let password = read_password(&source, Some(cluster))
        .await
        .map_err(|e| PlanError::new("EncryptionSecretUnusable", e.to_string()))?;
    let mut credentials: BTreeMap<String, SecretValue> = access
        .options
        .variables()
        .into_iter()
        .map(|(key, value)| (key.to_owned(), SecretValue::new(value.into_bytes())))
        .collect();
    credentials.insert(PASSWORD_VARIABLE.into(), password);
    let directory = directory.trim_matches('/');
    Ok(RepositoryAccess {
        url: format!("{}/{directory}", access.url.trim_end_matches('/')),
        claim: access.claim,
        storage: (storage_namespace, storage_ref.name.clone()),
        credentials,
    })
}

/// Refuses tasks without a parameter they need, StackState data stores mixed with a namespace's
/// manifests or volumes (the one goes to the installation's archive bucket, the other to the
/// repository), and data stores outside the session's namespace (its account's Role is there).
fn check_tasks(
    tasks: &[BackupTask],
    target: &TypedObjectRef,
    namespace: &str,
) -> Result<(), PlanError> {
    if let Some((task, param)) = tasks
        .iter()
        .find_map(|t| missing_param(t).map(|param| (t, param)))
    {
        return Err(PlanError::new(
            "TaskParamMissing",
            format!(
                "task {} needs the parameter {param}",
                serde_json::to_value(task.name).unwrap_or_default()
            ),
        ));
    }
    let stores = tasks.iter().filter(|t| is_data_store(t.name)).count();
    if stores == 0 {
        return Ok(());
    }
    if stores != tasks.len() {
        return Err(PlanError::new(
            "TasksMixed",
            "a session backs up either StackState data stores or manifests and volumes, not both",
        ));
    }
    let installation = target_in(target, namespace).namespace.unwrap_or_default();
    if installation != namespace {
        return Err(PlanError::new(
            "TargetOutsideNamespace",
            format!(
                "the StackState installation in {installation} is backed up by a configuration in its own namespace, not in {namespace}"
            ),
        ));
    }
    Ok(())
}

/// The target with its namespace (the configuration's when it names none; a Namespace
/// target is its own).
pub(crate) fn target_in(target: &TypedObjectRef, namespace: &str) -> TypedObjectRef {
    let mut target = target.clone();
    if target.namespace.is_none() {
        target.namespace = Some(if target.kind == "Namespace" {
            target.name.clone()
        } else {
            namespace.to_owned()
        });
    }
    target
}

/// One of kbackup's objects, read as its type; a missing or unreadable one is a PlanError.
pub(crate) async fn read<T: serde::de::DeserializeOwned, C: ResourceStore + ?Sized>(
    cluster: &C,
    kind: &'static str,
    namespace: &str,
    name: &str,
) -> Result<T, PlanError> {
    let object = cluster
        .get(&ObjectRef::namespaced(API_VERSION, kind, namespace, name))
        .await?
        .ok_or_else(|| {
            PlanError::new(
                not_found(kind),
                format!("{kind} {namespace}/{name} not found"),
            )
        })?;
    serde_json::from_value(object).map_err(|e| {
        PlanError::new(
            "Unreadable",
            format!("{kind} {namespace}/{name} cannot be read: {e}"),
        )
    })
}

fn not_found(kind: &str) -> &'static str {
    match kind {
        "BackupStorage" => "StorageNotFound",
        "RetentionPolicy" => "RetentionPolicyNotFound",
        "BackupConfiguration" => "ConfigurationNotFound",
        "BackupSession" => "SessionNotFound",
        "Snapshot" => "SnapshotNotFound",
        "Repository" => "RepositoryNotFound",
        _ => "NotFound",
    }
}
