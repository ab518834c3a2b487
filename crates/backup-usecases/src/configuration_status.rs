//! A BackupConfiguration's status: whether everything it names exists, is ready and may be
//! used, each check a condition naming what is missing. Invalid when it cannot work as
//! written (a schedule that does not parse, a repository on a backend it does not have, a
//! storage it may not use, a target of a kind the cluster does not serve); NotReady when
//! something it names is missing or not ready yet; Ready otherwise.

use crate::credentials::{PasswordSource, read_password};
use backup_api::{
    API_VERSION, BackupConfigurationPhase, BackupConfigurationSpec, BackupConfigurationStatus,
    Condition, ConditionStatus, NamespacesFrom, ObjectRef as ApiRef, UsagePolicy,
};
use backup_core::ClusterError;
use backup_core::cluster::{ConfigObjects, ObjectRef, ResourceStore};
use backup_core::schedule::Schedule;
use serde_json::Value;

/// What one check found wrong.
enum Finding {
    /// The configuration cannot work as written.
    Invalid(String),
    /// Something it names is missing or not ready.
    NotReady(String),
}

/// Checks the configuration `spec` of namespace `namespace` against the cluster.
pub async fn configuration_status<C: ResourceStore + ConfigObjects + ?Sized>(
    cluster: &C,
    namespace: &str,
    spec: &BackupConfigurationSpec,
) -> Result<BackupConfigurationStatus, ClusterError> {
    let target = target_found(cluster, namespace, spec).await?;
    let target_found = Some(target.is_none());
    let checks = [
        ("TargetFound", target),
        ("SessionsValid", sessions_valid(spec)),
        (
            "BackendsReady",
            backends_ready(cluster, namespace, spec).await?,
        ),
        (
            "SecretsFound",
            secrets_found(cluster, namespace, spec).await,
        ),
    ];
    let mut phase = BackupConfigurationPhase::Ready;
    let mut conditions = Vec::new();
    for (kind, finding) in checks {
        let (status, reason, message) = match finding {
            None => (ConditionStatus::True, "Checked", String::new()),
            Some(Finding::Invalid(message)) => {
                phase = BackupConfigurationPhase::Invalid;
                (ConditionStatus::False, "Invalid", message)
            }
            Some(Finding::NotReady(message)) => {
                if phase == BackupConfigurationPhase::Ready {
                    phase = BackupConfigurationPhase::NotReady;
                }
                (ConditionStatus::False, "Missing", message)
            }
        };
        conditions.push(Condition {
            type_: kind.into(),
            status,
            reason: reason.into(),
            message,
            last_transition_time: None,
            observed_generation: None,
        });
    }
    Ok(BackupConfigurationStatus {
        phase: Some(phase),
        target_found,
        conditions,
    })
}

/// The target, looked up as the kind the cluster serves.
async fn target_found<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    spec: &BackupConfigurationSpec,
) -> Result<Option<Finding>, ClusterError> {
    let target = &spec.target;
    let served = cluster.discover().await?;
    let Some(kind) = served
        .types
        .iter()
        .find(|t| t.group == target.api_group && t.kind == target.kind)
    else {
        return Ok(Some(Finding::Invalid(format!(
            "the cluster serves no kind {} in group {:?}",
            target.kind, target.api_group
        ))));
    };
    let object = ObjectRef {
        api_version: kind.api_version(),
        kind: kind.kind.clone(),
        namespace: kind.namespaced.then(|| {
            target
                .namespace
                .clone()
                .unwrap_or_else(|| namespace.to_owned())
        }),
        name: target.name.clone(),
    };
    Ok(match cluster.get(&object).await? {
        Some(_) => None,
        None => Some(Finding::NotReady(format!(
            "target {} {}{} not found",
            target.kind,
            object
                .namespace
                .map(|n| format!("{n}/"))
                .unwrap_or_default(),
            target.name
        ))),
    })
}

/// Every schedule parses; every repository is on a backend of the configuration.
fn sessions_valid(spec: &BackupConfigurationSpec) -> Option<Finding> {
    for session in &spec.sessions {
        if let Err(error) = Schedule::parse(&session.scheduler.schedule) {
            return Some(Finding::Invalid(format!(
                "session {}: {error}",
                session.name
            )));
        }
        for repository in &session.repositories {
            if !spec.backends.iter().any(|b| b.name == repository.backend) {
                return Some(Finding::Invalid(format!(
                    "session {}: repository {} is on backend {}, which this configuration does not have",
                    session.name, repository.name, repository.backend
                )));
            }
        }
    }
    None
}

/// Whether an object of `owner_namespace` with the usage `policy` (none: its own namespace
/// only) may be used from `namespace`.
pub(crate) async fn may_use<C: ResourceStore + ?Sized>(
    cluster: &C,
    policy: Option<&UsagePolicy>,
    owner_namespace: &str,
    namespace: &str,
) -> Result<bool, ClusterError> {
    let allowed = policy
        .map(|p| p.allowed_namespaces.clone())
        .unwrap_or_default();
    Ok(match allowed.from {
        NamespacesFrom::All => true,
        NamespacesFrom::Same => owner_namespace == namespace,
        NamespacesFrom::Selector => {
            let ns = cluster
                .get(&ObjectRef::cluster_scoped("v1", "Namespace", namespace))
                .await?
                .unwrap_or(Value::Null);
            allowed
                .match_labels
                .iter()
                .flatten()
                .all(|(k, v)| ns["metadata"]["labels"][k] == v.as_str())
        }
    })
}

/// Every backend's storage exists, is ready and may be used from `namespace`, and its
/// retention policy exists.
async fn backends_ready<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    spec: &BackupConfigurationSpec,
) -> Result<Option<Finding>, ClusterError> {
    for backend in &spec.backends {
        let (storage_namespace, storage) =
            lookup(cluster, namespace, "BackupStorage", &backend.storage_ref).await?;
        let Some(storage) = storage else {
            return Ok(Some(Finding::NotReady(format!(
                "BackupStorage {storage_namespace}/{} not found",
                backend.storage_ref.name
            ))));
        };
        let policy: Option<UsagePolicy> =
            serde_json::from_value(storage["spec"]["usagePolicy"].clone()).ok();
        let permitted = may_use(cluster, policy.as_ref(), &storage_namespace, namespace).await?;
        if !permitted {
            return Ok(Some(Finding::Invalid(format!(
                "BackupStorage {storage_namespace}/{} may not be used from namespace {namespace}",
                backend.storage_ref.name
            ))));
        }
        if storage["status"]["phase"] != "Ready" {
            let why = storage["status"]["conditions"][0]["message"]
                .as_str()
                .unwrap_or("not probed yet");
            return Ok(Some(Finding::NotReady(format!(
                "BackupStorage {storage_namespace}/{} is not ready: {why}",
                backend.storage_ref.name
            ))));
        }
        let (policy_namespace, policy) = lookup(
            cluster,
            namespace,
            "RetentionPolicy",
            &backend.retention_policy,
        )
        .await?;
        if policy.is_none() {
            return Ok(Some(Finding::NotReady(format!(
                "RetentionPolicy {policy_namespace}/{} not found",
                backend.retention_policy.name
            ))));
        }
    }
    Ok(None)
}

/// One of kbackup's objects, by reference (in `namespace` unless it names its own).
async fn lookup<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    kind: &str,
    reference: &ApiRef,
) -> Result<(String, Option<Value>), ClusterError> {
    let object_namespace = reference.namespace_or(namespace);
    let object = ObjectRef::namespaced(API_VERSION, kind, &object_namespace, &reference.name);
    Ok((object_namespace, cluster.get(&object).await?))
}

/// Every repository's password Secret exists and has a password.
async fn secrets_found<C: ConfigObjects + ?Sized>(
    cluster: &C,
    namespace: &str,
    spec: &BackupConfigurationSpec,
) -> Option<Finding> {
    for repository in spec.sessions.iter().flat_map(|s| &s.repositories) {
        let secret = &repository.encryption_secret;
        let source = PasswordSource::Secret {
            namespace: secret.namespace_or(namespace),
            name: secret.name.clone(),
        };
        if let Err(error) = read_password(&source, Some(cluster)).await {
            return Some(Finding::NotReady(format!(
                "repository {}: {error}",
                repository.name
            )));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::testing::FakeCluster;
    use serde_json::json;

    /// A configuration of namespace `apps`'s manifests, daily, into storage `minio`.
    fn spec() -> BackupConfigurationSpec {
        serde_json::from_value(json!({
            "target": {"kind": "Namespace", "name": "apps"},
            "backends": [{"name": "main", "storageRef": {"name": "minio", "namespace": "ops"},
                "retentionPolicy": {"name": "keep-3"}}],
            "sessions": [{"name": "daily", "scheduler": {"schedule": "0 3 * * *"},
                "repositories": [{"name": "apps", "backend": "main", "directory": "apps",
                    "encryptionSecret": {"name": "password"}}],
                "tasks": [{"name": "manifest-backup"}]}]
        }))
        .unwrap()
    }

    /// Everything the configuration names, ready; the storage usable from `from`.
    fn cluster(from: &str) -> FakeCluster {
        let cluster = FakeCluster::new();
        cluster.serve("", "v1", "Namespace", false);
        cluster.insert(&json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "apps", "labels": {"backups": "yes"}}}));
        cluster.insert(&json!({"apiVersion": "kbackup.io/v1alpha1", "kind": "BackupStorage",
            "metadata": {"name": "minio", "namespace": "ops"},
            "spec": {"usagePolicy": {"allowedNamespaces": {"from": from, "matchLabels": {"backups": "yes"}}}},
            "status": {"phase": "Ready"}}));
        cluster.insert(
            &json!({"apiVersion": "kbackup.io/v1alpha1", "kind": "RetentionPolicy",
            "metadata": {"name": "keep-3", "namespace": "apps"}, "spec": {}}),
        );
        cluster.insert(&json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "password", "namespace": "apps"},
            "data": {"password": "c2VjcmV0"}}));
        cluster
    }

    async fn status(
        cluster: &FakeCluster,
        spec: &BackupConfigurationSpec,
    ) -> (BackupConfigurationPhase, String) {
        let status = configuration_status(cluster, "apps", spec).await.unwrap();
        let failed: Vec<String> = status
            .conditions
            .iter()
            .filter(|c| c.status == ConditionStatus::False)
            .map(|c| format!("{}: {}", c.type_, c.message))
            .collect();
        (status.phase.unwrap(), failed.join("; "))
    }

    #[tokio::test]
    async fn a_configuration_is_ready_when_everything_it_names_is() {
        for from in ["All", "Selector"] {
            let (phase, failed) = status(&cluster(from), &spec()).await;
            assert_eq!(phase, BackupConfigurationPhase::Ready, "{from}: {failed}");
        }
    }

    #[tokio::test]
    async fn what_is_missing_or_wrong_is_named() {
        let (phase, failed) = status(&cluster("Same"), &spec()).await;
        assert_eq!(phase, BackupConfigurationPhase::Invalid);
        assert!(
            failed.contains(
                "BackendsReady: BackupStorage ops/minio may not be used from namespace apps"
            ),
            "{failed}"
        );

        let ready = cluster("All");
        let mut gone = spec();
        gone.target.name = "elsewhere".into();
        gone.sessions[0].repositories[0].encryption_secret.name = "absent".into();
        let (phase, failed) = status(&ready, &gone).await;
        assert_eq!(phase, BackupConfigurationPhase::NotReady);
        assert!(
            failed.contains("TargetFound: target Namespace elsewhere not found"),
            "{failed}"
        );
        assert!(
            failed.contains("SecretsFound: repository apps: Secret apps/absent not found"),
            "{failed}"
        );

        let mut bad = spec();
        bad.sessions[0].scheduler.schedule = "at three".into();
        bad.target.kind = "Gadget".into();
        let (phase, failed) = status(&ready, &bad).await;
        assert_eq!(phase, BackupConfigurationPhase::Invalid);
        assert!(failed.contains("SessionsValid: session daily:"), "{failed}");
        assert!(
            failed.contains("TargetFound: the cluster serves no kind Gadget"),
            "{failed}"
        );

        let unready = cluster("All");
        unready.insert(&json!({"apiVersion": "kbackup.io/v1alpha1", "kind": "BackupStorage",
            "metadata": {"name": "minio", "namespace": "ops"},
            "spec": {"usagePolicy": {"allowedNamespaces": {"from": "All"}}},
            "status": {"phase": "NotReady", "conditions": [{"type": "StorageReachable",
                "status": "False", "reason": "WriteFailed", "message": "write failed: access denied"}]}}));
        let (phase, failed) = status(&unready, &spec()).await;
        assert_eq!(phase, BackupConfigurationPhase::NotReady);
        assert!(
            failed.contains("BackupStorage ops/minio is not ready: write failed: access denied"),
            "{failed}"
        );
    }
}
