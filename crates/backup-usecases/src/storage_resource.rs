//! A BackupStorage object's status, from a real probe of its backend with the credentials of
//! its Secret: the `storage check` steps (write, read, list, conditional create, delete).
//! What the operator writes on the object; a condition names the cause when it is not ready.

use crate::credentials::{CredentialError, apply_storage_secret};
use crate::storage_probe::probe_storage;
use backup_api::{
    BackupStorageSpec, BackupStorageStatus, Condition, ConditionStatus, Provider, StoragePhase,
};
use backup_core::RepositoryLocation;
use backup_core::cluster::ConfigObjects;
use backup_storage::StorageOptions;

/// The condition the probe sets.
pub const REACHABLE: &str = "StorageReachable";

/// Probes the object store `spec` describes (its Secret read in `namespace`) and says what
/// the object's status is: Ready when every step worked, else NotReady with the reason. A
/// local storage is probed by a Job mounting its claim instead (`claim_probe`).
pub async fn storage_status<C: ConfigObjects + ?Sized>(
    cluster: &C,
    namespace: &str,
    spec: &BackupStorageSpec,
) -> BackupStorageStatus {
    probed(probe(cluster, namespace, spec).await.map(|millis| {
        format!("write, read, list, conditional create and delete work ({millis} ms)")
    }))
}

/// The status a probe's outcome gives: Ready with what worked, or NotReady with the reason
/// and message of what did not.
pub fn probed(outcome: Result<String, (&'static str, String)>) -> BackupStorageStatus {
    let condition = match outcome {
        Ok(message) => condition(ConditionStatus::True, "ProbeSucceeded", message),
        Err((reason, message)) => condition(ConditionStatus::False, reason, message),
    };
    BackupStorageStatus {
        phase: Some(match condition.status {
            ConditionStatus::True => StoragePhase::Ready,
            _ => StoragePhase::NotReady,
        }),
        last_probe_time: condition.last_transition_time.clone(),
        conditions: vec![condition],
        ..BackupStorageStatus::default()
    }
}

/// Where the claim of a local storage is mounted in the pods that use it.
pub const CLAIM_MOUNT: &str = "/kbackup/storage";

/// How a storage is reached. Its Debug shows no credential.
pub struct StorageAccess {
    /// Its URL: `s3://bucket/prefix`, `az://container`, or `file:///kbackup/storage/sub`
    /// for a claim (mounted at [`CLAIM_MOUNT`]).
    pub url: String,
    /// The options, with the credentials of its Secret.
    pub options: StorageOptions,
    /// The claim (in the storage's namespace) a pod mounts at [`CLAIM_MOUNT`] to reach it:
    /// only a local storage has one, and only such a pod reaches it.
    pub claim: Option<String>,
}

impl std::fmt::Debug for StorageAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageAccess")
            .field("url", &self.url)
            .field("claim", &self.claim)
            .finish_non_exhaustive()
    }
}

/// Where a storage is and how to reach it, with the credentials of its Secret (read in
/// `namespace`); else why not (a reason and a message, neither holding a credential).
pub async fn storage_access<C: ConfigObjects + ?Sized>(
    cluster: &C,
    namespace: &str,
    spec: &BackupStorageSpec,
) -> Result<StorageAccess, (&'static str, String)> {
    let storage = &spec.storage;
    let mut options = StorageOptions::from_lookup(|_| None);
    let missing = |what: &str| {
        (
            "InvalidSpec",
            format!("provider {what} without its settings"),
        )
    };
    let (url, secret) = match storage.provider {
        Provider::S3 => {
            let s3 = storage.s3.as_ref().ok_or_else(|| missing("s3"))?;
            options.endpoint.clone_from(&s3.endpoint);
            options.region.clone_from(&s3.region);
            (location("s3", &s3.bucket, &s3.prefix), &s3.secret_name)
        }
        Provider::Azure => {
            let azure = storage.azure.as_ref().ok_or_else(|| missing("azure"))?;
            options.azure_account = Some(azure.storage_account.clone());
            options.azure_endpoint.clone_from(&azure.endpoint);
            (
                location("az", &azure.container, &azure.prefix),
                &azure.secret_name,
            )
        }
        Provider::Local => {
            let local = storage.local.as_ref().ok_or_else(|| missing("local"))?;
            let url = match local.sub_path.as_deref().map(|p| p.trim_matches('/')) {
                Some(sub) if !sub.is_empty() => {
                    let sub = relative_directory(sub).ok_or_else(|| {
                        ("InvalidSpec", format!("subPath {sub:?} leaves the claim"))
                    })?;
                    format!("file://{CLAIM_MOUNT}/{sub}")
                }
                _ => format!("file://{CLAIM_MOUNT}"),
            };
            return Ok(StorageAccess {
                url,
                options,
                claim: Some(local.claim_name.clone()),
            });
        }
        Provider::Gcs => {
            let gcs = storage.gcs.as_ref().ok_or_else(|| missing("gcs"))?;
            (location("gs", &gcs.bucket, &gcs.prefix), &gcs.secret_name)
        }
    };
    apply_storage_secret(cluster, namespace, secret, &mut options)
        .await
        .map_err(|error| {
            let reason = match error {
                CredentialError::SecretNotFound { .. } => "SecretNotFound",
                CredentialError::NoStorageKeys { .. } => "SecretHasNoKeys",
                _ => "SecretUnreadable",
            };
            (reason, error.to_string())
        })?;
    Ok(StorageAccess {
        url,
        options,
        claim: None,
    })
}

/// `directory` without outer slashes when it stays below its root (no empty, `.` or `..`
/// part): schemas say so, what writes or deletes checks again.
pub(crate) fn relative_directory(directory: &str) -> Option<String> {
    let trimmed = directory.trim_matches('/');
    let parts: Vec<&str> = trimmed.split('/').collect();
    let safe = !trimmed.is_empty()
        && parts
            .iter()
            .all(|p| !p.is_empty() && *p != "." && *p != "..");
    safe.then(|| trimmed.to_owned())
}

/// The probe's time, or why the storage is not usable (a reason and a message).
async fn probe<C: ConfigObjects + ?Sized>(
    cluster: &C,
    namespace: &str,
    spec: &BackupStorageSpec,
) -> Result<u128, (&'static str, String)> {
    let StorageAccess {
        url,
        options,
        claim,
    } = storage_access(cluster, namespace, spec).await?;
    if let Some(claim) = claim {
        return Err((
            "ClaimNotMounted",
            format!("claim {claim} is probed by a Job that mounts it"),
        ));
    }
    let location = RepositoryLocation::parse(&url).map_err(|e| ("InvalidSpec", e.to_string()))?;
    let opened = backup_storage::open(&location, &options)
        .await
        .map_err(|e| ("InvalidSpec", e.to_string()))?;
    let started = std::time::Instant::now();
    let probe = probe_storage(opened.as_ref()).await;
    match probe.failure {
        None => Ok(started.elapsed().as_millis()),
        Some(error) => {
            let step = probe
                .steps
                .iter()
                .find(|s| s.result == "FAILED")
                .map_or("probe", |s| s.step);
            Err((failed_reason(step), format!("{step} failed: {error}")))
        }
    }
}

/// `s3://bucket/prefix`.
fn location(scheme: &str, bucket: &str, prefix: &Option<String>) -> String {
    match prefix.as_deref().map(|p| p.trim_matches('/')) {
        Some(prefix) if !prefix.is_empty() => format!("{scheme}://{bucket}/{prefix}"),
        _ => format!("{scheme}://{bucket}"),
    }
}

/// The reason of a failed probe step (`WriteFailed`).
fn failed_reason(step: &str) -> &'static str {
    match step {
        "write" => "WriteFailed",
        "read" => "ReadFailed",
        "list" => "ListFailed",
        "conditional create" => "ConditionalCreateFailed",
        "delete" => "DeleteFailed",
        _ => "ProbeFailed",
    }
}

fn condition(status: ConditionStatus, reason: &str, message: String) -> Condition {
    Condition {
        type_: REACHABLE.into(),
        status,
        reason: reason.into(),
        message,
        last_transition_time: Some(
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        observed_generation: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_api::S3Backend;
    use backup_core::testing::FakeCluster;

    fn s3(secret: &str) -> BackupStorageSpec {
        BackupStorageSpec::s3(S3Backend {
            endpoint: Some("http://127.0.0.1:9".into()),
            bucket: "b".into(),
            region: None,
            prefix: Some("/team/".into()),
            secret_name: secret.into(),
        })
    }

    #[tokio::test]
    async fn a_storage_without_its_secret_is_not_ready_and_says_so() {
        let status = storage_status(&FakeCluster::new(), "ops", &s3("gone")).await;
        assert_eq!(status.phase, Some(StoragePhase::NotReady));
        let condition = &status.conditions[0];
        assert_eq!(
            (
                condition.type_.as_str(),
                condition.status,
                condition.reason.as_str()
            ),
            (REACHABLE, ConditionStatus::False, "SecretNotFound")
        );
        assert!(condition.message.contains("ops/gone"), "{condition:?}");
        assert_eq!(location("s3", "b", &Some("/team/".into())), "s3://b/team");
        assert_eq!(location("az", "c", &None), "az://c");
    }

    #[tokio::test]
    async fn a_gcs_storage_is_its_bucket_with_the_service_account_key_of_its_secret() {
        let cluster = FakeCluster::new();
        cluster.insert(&serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "gcs-key", "namespace": "ops"},
            "data": {"GOOGLE_SERVICE_ACCOUNT_KEY": "{\"private_key\": \"k\"}"}}));
        let spec: BackupStorageSpec = serde_json::from_value(serde_json::json!({
            "storage": {"provider": "gcs",
                "gcs": {"bucket": "backups", "prefix": "team", "secretName": "gcs-key"}}}))
        .unwrap();
        let access = storage_access(&cluster, "ops", &spec).await.unwrap();
        assert_eq!(access.url, "gs://backups/team");
        assert_eq!(access.claim, None);
        let variables = access.options.variables();
        assert!(
            variables
                .iter()
                .any(|(name, value)| *name == "GOOGLE_SERVICE_ACCOUNT_KEY"
                    && value.contains("private_key")),
            "the key goes to the session's Secret"
        );
        assert!(!format!("{access:?}").contains("private_key"));
    }
}
