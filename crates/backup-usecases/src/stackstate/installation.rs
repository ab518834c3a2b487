//! The installation a StackState command works on: its cluster, namespace and backup
//! configuration.

use super::StackStateError;
use backup_core::cluster::Cluster;
use backup_core::stackstate::{DEFAULT_CONFIG_KEY, StackStateConfig};
use backup_k8s::datastore::JobRequest;

/// Where the backup configuration is read from in the installation's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    /// The ConfigMap with the configuration (key `config`).
    pub configmap: String,
    /// The Secret merged over it (credentials); a missing one is fine.
    pub secret: String,
}

/// The cluster, namespace and configuration of one installation.
pub struct Installation<C> {
    /// The cluster it runs in.
    pub cluster: C,
    /// Its namespace.
    pub namespace: String,
    /// Its backup configuration.
    pub config: StackStateConfig,
    /// The Secret of the source was not found: the ConfigMap was read alone.
    pub secret_missing: bool,
}

impl<C: Cluster> Installation<C> {
    /// The installation with `config` (from a file), or, without one, the ConfigMap of
    /// `source` with its Secret merged over it.
    pub async fn load(
        cluster: C,
        namespace: &str,
        source: &ConfigSource,
        config: Option<StackStateConfig>,
    ) -> Result<Self, StackStateError> {
        let mut secret_missing = false;
        let config = match config {
            Some(config) => config,
            None => {
                let map = cluster
                    .config_map(namespace, &source.configmap)
                    .await?
                    .ok_or_else(|| StackStateError::ConfigMapMissing {
                        namespace: namespace.to_owned(),
                        name: source.configmap.clone(),
                    })?;
                let secret = cluster.secret(namespace, &source.secret).await?;
                secret_missing = secret.is_none();
                StackStateConfig::from_objects(
                    &source.configmap,
                    DEFAULT_CONFIG_KEY,
                    &map,
                    secret.as_ref(),
                )?
            }
        };
        Ok(Self {
            cluster,
            namespace: namespace.to_owned(),
            config,
            secret_missing,
        })
    }

    /// A Job's request for `archive` with the object store keys and a run id from the
    /// current time (`20261121t100000`, as sts-backup names its Jobs).
    pub fn job_request(&self, archive: String) -> Result<JobRequest, StackStateError> {
        let store = self.config.object_store_credentials()?;
        Ok(JobRequest {
            archive,
            access_key: store.access_key.expose().to_owned(),
            secret_key: store.secret_key.clone(),
            run_id: chrono::Utc::now().format("%Y%m%dt%H%M%S").to_string(),
        })
    }
}
