//! Credentials read from where the front-end says they are (it resolves the environment,
//! flags and configuration first): a repository's password, and an object store's keys
//! from a Kubernetes Secret.

use backup_core::ClusterError;
use backup_core::cluster::{ConfigObjects, SecretValue};
use backup_storage::StorageOptions;
use std::path::PathBuf;

/// The keys a password Secret may hold it under (`RESTIC_PASSWORD`: KubeStash's and Stash's
/// repositories), in order of preference.
pub const PASSWORD_KEYS: [&str; 2] = ["password", "RESTIC_PASSWORD"];

/// Where a repository's password is.
#[derive(Debug, Clone)]
pub enum PasswordSource {
    /// Given as it is (an environment variable).
    Value(SecretValue),
    /// A Kubernetes Secret, under one of [`PASSWORD_KEYS`].
    Secret {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The first line of a file.
    File(PathBuf),
}

impl PasswordSource {
    /// Whether reading it needs the cluster.
    pub fn needs_cluster(&self) -> bool {
        matches!(self, Self::Secret { .. })
    }
}

/// Why the password could not be read. Never holds the password.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The Secret does not exist.
    #[error("Secret {namespace}/{name} not found")]
    SecretNotFound {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The Secret holds no password key.
    #[error("Secret {namespace}/{name} has no key `password` (or `RESTIC_PASSWORD`)")]
    NoPasswordKey {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The Secret holds no object store keys.
    #[error(
        "Secret {namespace}/{name} has no AWS_ACCESS_KEY_ID, AZURE_STORAGE_ACCOUNT_KEY or GOOGLE_SERVICE_ACCOUNT_KEY key (keys found: {})",
        keys.join(", ")
    )]
    NoStorageKeys {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The keys it has (never their values).
        keys: Vec<String>,
    },
    /// The file cannot be read.
    #[error("cannot read password file {}: {cause}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// A Secret was named but no cluster given.
    #[error("the password is in a Secret, and no cluster was given to read it")]
    NoCluster,
    /// The cluster refused or failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Reads the password; `cluster` is used only for a Secret.
pub async fn read_password<C: ConfigObjects + ?Sized>(
    source: &PasswordSource,
    cluster: Option<&C>,
) -> Result<SecretValue, CredentialError> {
    match source {
        PasswordSource::Value(value) => Ok(value.clone()),
        PasswordSource::Secret { namespace, name } => {
            let cluster = cluster.ok_or(CredentialError::NoCluster)?;
            let secret = cluster.secret(namespace, name).await?.ok_or_else(|| {
                CredentialError::SecretNotFound {
                    namespace: namespace.clone(),
                    name: name.clone(),
                }
            })?;
            PASSWORD_KEYS
                .iter()
                .find_map(|key| secret.get(*key))
                .cloned()
                .ok_or_else(|| CredentialError::NoPasswordKey {
                    namespace: namespace.clone(),
                    name: name.clone(),
                })
        }
        PasswordSource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|cause| CredentialError::File {
                path: path.clone(),
                cause,
            })?;
            Ok(SecretValue::new(
                text.lines().next().unwrap_or_default().as_bytes().to_vec(),
            ))
        }
    }
}

/// Lays the object store credentials of a Kubernetes Secret over `options`: its keys are
/// those of the standard variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_ENDPOINT_URL`, `AZURE_STORAGE_ACCOUNT_KEY`, `GOOGLE_SERVICE_ACCOUNT_KEY`, ...), and
/// each one it has wins (naming
/// a Secret is explicit).
pub async fn apply_storage_secret<C: ConfigObjects + ?Sized>(
    cluster: &C,
    namespace: &str,
    name: &str,
    options: &mut StorageOptions,
) -> Result<(), CredentialError> {
    let data =
        cluster
            .secret(namespace, name)
            .await?
            .ok_or_else(|| CredentialError::SecretNotFound {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })?;
    let text = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(v.expose()).trim().to_owned())
    };
    let found = StorageOptions::from_lookup(text);
    if found.access_key_id.is_none()
        && found.azure_key.is_none()
        && found.gcs_service_account_key.is_none()
    {
        return Err(CredentialError::NoStorageKeys {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            keys: data.keys().cloned().collect(),
        });
    }
    macro_rules! take {
        ($($field:ident),*) => { $(if found.$field.is_some() { options.$field = found.$field.clone(); })* };
    }
    take!(
        endpoint,
        region,
        access_key_id,
        secret_access_key,
        session_token,
        azure_account,
        azure_key,
        azure_endpoint,
        gcs_service_account_key
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::testing::FakeCluster;

    /// A cluster with one Secret, `kbackup/repo`, with the given keys.
    fn one_secret(keys: Vec<(&str, &str)>) -> FakeCluster {
        let cluster = FakeCluster::new();
        let data: serde_json::Map<String, serde_json::Value> = keys
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        cluster.insert(&serde_json::json!({"kind": "Secret",
            "metadata": {"name": "repo", "namespace": "kbackup"}, "data": data}));
        cluster
    }

    fn secret(name: &str) -> PasswordSource {
        PasswordSource::Secret {
            namespace: "kbackup".into(),
            name: name.into(),
        }
    }

    #[tokio::test]
    async fn a_secret_gives_its_password_key_and_errors_never_hold_the_value() {
        let restic = one_secret(vec![("RESTIC_PASSWORD", "s3cret")]);
        let read = read_password(&secret("repo"), Some(&restic)).await.unwrap();
        assert_eq!(read.expose(), b"s3cret");
        let both = one_secret(vec![("RESTIC_PASSWORD", "other"), ("password", "first")]);
        let read = read_password(&secret("repo"), Some(&both)).await.unwrap();
        assert_eq!(read.expose(), b"first");
        let none = one_secret(vec![("token", "s3cret")]);
        let error = read_password(&secret("repo"), Some(&none))
            .await
            .unwrap_err();
        assert!(!error.to_string().contains("s3cret"), "{error}");
        assert!(matches!(error, CredentialError::NoPasswordKey { .. }));
        let missing = read_password(&secret("gone"), Some(&none)).await;
        assert!(matches!(
            missing,
            Err(CredentialError::SecretNotFound { .. })
        ));
        let no_cluster = read_password::<FakeCluster>(&secret("repo"), None).await;
        assert!(matches!(no_cluster, Err(CredentialError::NoCluster)));
    }

    #[tokio::test]
    async fn a_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "line one\nline two\n").unwrap();
        let read = read_password::<FakeCluster>(&PasswordSource::File(path), None)
            .await
            .unwrap();
        assert_eq!(read.expose(), b"line one");
    }

    #[tokio::test]
    async fn a_storage_secret_lays_its_keys_over_the_options_and_names_only_keys() {
        let cluster = backup_core::testing::FakeCluster::new();
        cluster.insert(&serde_json::json!({"kind": "Secret",
            "metadata": {"name": "s3", "namespace": "kbackup"},
            "data": {"AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "hidden-value\n"}}));
        cluster.insert(&serde_json::json!({"kind": "Secret",
            "metadata": {"name": "other", "namespace": "kbackup"},
            "data": {"token": "hidden-token"}}));
        let mut options = StorageOptions {
            access_key_id: Some("from-env".into()),
            region: Some("eu-1".into()),
            ..StorageOptions::default()
        };
        apply_storage_secret(&cluster, "kbackup", "s3", &mut options)
            .await
            .unwrap();
        assert_eq!(options.access_key_id.as_deref(), Some("AKIA1"));
        let secret = options.secret_access_key.as_ref().unwrap();
        assert_eq!(secret.expose(), "hidden-value", "trimmed");
        assert_eq!(
            options.region.as_deref(),
            Some("eu-1"),
            "kept where the Secret is silent"
        );
        let error = apply_storage_secret(&cluster, "kbackup", "other", &mut options)
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("keys found: token") && !text.contains("hidden"),
            "{text}"
        );
        let missing = apply_storage_secret(&cluster, "kbackup", "none", &mut options).await;
        assert!(matches!(
            missing,
            Err(CredentialError::SecretNotFound { .. })
        ));
    }
}
