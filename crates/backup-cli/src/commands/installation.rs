//! The installation a StackState command works on, loaded from the flags: its cluster,
//! namespace and backup configuration (the procedures are in backup-usecases).

use crate::cli;
use crate::context::Context;
use crate::exit::CliError;
use anyhow::anyhow;
use backup_core::stackstate::StackStateConfig;
use backup_k8s::KubeCluster;
use backup_usecases::stackstate::{ConfigSource, StackStateError};

/// The installation on the cluster kbackup talks to.
pub(crate) type Installation = backup_usecases::stackstate::Installation<KubeCluster>;

/// Connects and reads the configuration: the `stackstate:` section of the configuration
/// file if there is one, else the ConfigMap with the Secret merged over it.
pub(crate) async fn load(
    context: &Context,
    source: &cli::ConfigSource,
) -> Result<Installation, CliError> {
    let namespace = context.require_namespace()?;
    let cluster = KubeCluster::connect(&context.kube).await?;
    let config = context
        .stackstate_file_config()
        .map(|value| StackStateConfig::from_value(value.clone()))
        .transpose()
        .map_err(CliError::user)?;
    let from = ConfigSource {
        configmap: source.configmap.clone(),
        secret: source.secret.clone(),
    };
    let installation = Installation::load(cluster, namespace, &from, config).await?;
    if installation.secret_missing {
        context.info(&format!(
            "note: Secret {namespace}/{} not found; using the ConfigMap alone",
            source.secret
        ));
    }
    Ok(installation)
}

impl From<StackStateError> for CliError {
    fn from(error: StackStateError) -> Self {
        match error {
            StackStateError::Cluster(error) => error.into(),
            StackStateError::Storage(error) => error.into(),
            StackStateError::Elasticsearch(error) => error.into(),
            StackStateError::Workflow(error) => error.into(),
            error @ StackStateError::ConfigMapMissing { .. } => {
                CliError::user(anyhow!("{error} (--configmap names another)"))
            }
            StackStateError::NoElasticsearchService => CliError::user(anyhow!(
                "configuration field elasticsearch.service (name and port) is required unless --es-url is given"
            )),
            StackStateError::NoIndices => CliError::user(anyhow!(
                "no indices to snapshot: pass --indices or set elasticsearch.slm.indices"
            )),
            other => CliError::user(other),
        }
    }
}
