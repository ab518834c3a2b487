//! A repository's password, read from where the front-end says it is (it resolves the
//! environment, flags and configuration first).

use backup_core::ClusterError;
use backup_core::cluster::{ConfigObjects, SecretValue};
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

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::collections::BTreeMap;

    /// One Secret, `kbackup/repo`, with the given keys.
    struct OneSecret(Vec<(&'static str, &'static str)>);

    #[async_trait]
    impl ConfigObjects for OneSecret {
        async fn config_map(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Option<BTreeMap<String, String>>, ClusterError> {
            Ok(None)
        }
        async fn secret(
            &self,
            namespace: &str,
            name: &str,
        ) -> Result<Option<BTreeMap<String, SecretValue>>, ClusterError> {
            Ok((namespace == "kbackup" && name == "repo").then(|| {
                self.0
                    .iter()
                    .map(|(k, v)| (k.to_string(), SecretValue::new(v.as_bytes().to_vec())))
                    .collect()
            }))
        }
    }

    fn secret(name: &str) -> PasswordSource {
        PasswordSource::Secret {
            namespace: "kbackup".into(),
            name: name.into(),
        }
    }

    #[tokio::test]
    async fn a_secret_gives_its_password_key_and_errors_never_hold_the_value() {
        let restic = OneSecret(vec![("RESTIC_PASSWORD", "s3cret")]);
        let read = read_password(&secret("repo"), Some(&restic)).await.unwrap();
        assert_eq!(read.expose(), b"s3cret");
        let both = OneSecret(vec![("RESTIC_PASSWORD", "other"), ("password", "first")]);
        let read = read_password(&secret("repo"), Some(&both)).await.unwrap();
        assert_eq!(read.expose(), b"first");
        let none = OneSecret(vec![("token", "s3cret")]);
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
        let no_cluster = read_password::<OneSecret>(&secret("repo"), None).await;
        assert!(matches!(no_cluster, Err(CredentialError::NoCluster)));
    }

    #[tokio::test]
    async fn a_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "line one\nline two\n").unwrap();
        let read = read_password::<OneSecret>(&PasswordSource::File(path), None)
            .await
            .unwrap();
        assert_eq!(read.expose(), b"line one");
    }
}
