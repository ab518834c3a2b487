//! The installation a StackState command works on: its cluster, namespace and backup
//! configuration.

use crate::cli::ConfigSource;
use crate::context::Context;
use crate::exit::CliError;
use anyhow::anyhow;
use backup_core::cluster::ConfigObjects;
use backup_core::stackstate::{DEFAULT_CONFIG_KEY, StackStateConfig};
use backup_k8s::KubeCluster;

/// The cluster, namespace and configuration of one installation.
pub(crate) struct Installation {
    pub cluster: KubeCluster,
    pub namespace: String,
    pub config: StackStateConfig,
}

impl Installation {
    /// Connects and reads the configuration: the `stackstate:` section of the configuration
    /// file if there is one, else the ConfigMap with the Secret merged over it.
    pub async fn load(context: &Context, source: &ConfigSource) -> Result<Self, CliError> {
        let namespace = context.require_namespace()?.to_owned();
        let cluster = KubeCluster::connect(&context.kube).await?;
        let config = match context.stackstate_file_config() {
            Some(value) => StackStateConfig::from_value(value.clone()).map_err(CliError::user)?,
            None => {
                let map = cluster.config_map(&namespace, &source.configmap).await?.ok_or_else(|| {
                    CliError::user(anyhow!(
                        "ConfigMap {namespace}/{} not found: is {namespace} the installation's namespace? (--configmap names another)",
                        source.configmap
                    ))
                })?;
                let secret = cluster.secret(&namespace, &source.secret).await?;
                if secret.is_none() {
                    context.info(&format!(
                        "note: Secret {namespace}/{} not found; using the ConfigMap alone",
                        source.secret
                    ));
                }
                StackStateConfig::from_objects(
                    &source.configmap,
                    DEFAULT_CONFIG_KEY,
                    &map,
                    secret.as_ref(),
                )
                .map_err(CliError::user)?
            }
        };
        Ok(Self {
            cluster,
            namespace,
            config,
        })
    }
}
