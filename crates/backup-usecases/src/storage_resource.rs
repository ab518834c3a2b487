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

/// Probes the storage `spec` describes (its Secret read in `namespace`) and says what the
/// object's status is: Ready when every step worked, else NotReady with the reason.
pub async fn storage_status<C: ConfigObjects + ?Sized>(
    cluster: &C,
    namespace: &str,
    spec: &BackupStorageSpec,
) -> BackupStorageStatus {
    let condition = match probe(cluster, namespace, spec).await {
        Ok(millis) => condition(
            ConditionStatus::True,
            "ProbeSucceeded",
            format!("write, read, list, conditional create and delete work ({millis} ms)"),
        ),
        Err((reason, message)) => condition(ConditionStatus::False, reason, message),
    };
    BackupStorageStatus {
        phase: Some(match condition.status {
            ConditionStatus::True => StoragePhase::Ready,
            _ => StoragePhase::NotReady,
        }),
        conditions: vec![condition],
        ..BackupStorageStatus::default()
    }
}

/// Where a storage is and how to reach it: its URL (`s3://bucket/prefix`) and the options
/// with the credentials of its Secret (read in `namespace`); else why not (a reason and a
/// message, neither holding a credential).
pub async fn storage_access<C: ConfigObjects + ?Sized>(
    cluster: &C,
    namespace: &str,
    spec: &BackupStorageSpec,
) -> Result<(String, StorageOptions), (&'static str, String)> {
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
        Provider::Gcs | Provider::Local => {
            return Err((
                "ProviderNotSupported",
                "the operator works with s3 and azure storages; gcs and local ones are not supported yet"
                    .into(),
            ));
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
    Ok((url, options))
}

/// The probe's time, or why the storage is not usable (a reason and a message).
async fn probe<C: ConfigObjects + ?Sized>(
    cluster: &C,
    namespace: &str,
    spec: &BackupStorageSpec,
) -> Result<u128, (&'static str, String)> {
    let (url, options) = storage_access(cluster, namespace, spec).await?;
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
}
