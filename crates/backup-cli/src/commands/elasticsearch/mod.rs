//! `kbackup elasticsearch configure|list|describe|snapshot|delete|restore|check-and-finalize`:
//! Elasticsearch snapshots of a StackState / SUSE Observability installation, compatible
//! with `sts-backup`.

mod configure;
mod restore;
mod snapshots;

use super::installation::Installation;
use crate::cli::{ElasticsearchCommand, EsArgs};
use crate::context::Context;
use crate::exit::{CliError, CliResult};
use anyhow::anyhow;
use backup_core::cluster::{Forward, PortForwarder};
use backup_elasticsearch::EsClient;

/// Runs an elasticsearch command.
pub async fn run(context: &Context, command: ElasticsearchCommand) -> CliResult {
    match command {
        ElasticsearchCommand::Configure {
            source,
            dry_run,
            no_slm,
        } => configure::run(context, &source, dry_run, no_slm).await,
        ElasticsearchCommand::List { source } => snapshots::list(context, &source).await,
        ElasticsearchCommand::Describe { source, snapshot } => {
            snapshots::describe(context, &source, &snapshot).await
        }
        ElasticsearchCommand::Snapshot {
            source,
            name,
            indices,
            wait,
            partial,
        } => snapshots::take(context, &source, name, indices, wait, partial).await,
        ElasticsearchCommand::Delete { source, snapshot } => {
            snapshots::delete(context, &source, &snapshot).await
        }
        ElasticsearchCommand::Restore {
            source,
            snapshot,
            background,
            allow_partial,
            indices,
            rename_pattern,
            rename_replacement,
            dry_run,
            timeout,
            pods_timeout,
            ..
        } => {
            let options = restore::Options {
                snapshot,
                background,
                allow_partial,
                indices,
                rename: rename_pattern.zip(rename_replacement),
                dry_run,
                timeout,
                pods_timeout,
            };
            restore::run(context, &source, options).await
        }
        ElasticsearchCommand::CheckAndFinalize {
            source,
            operation_id,
            wait,
            timeout,
        } => restore::finalize(context, &source, &operation_id, wait.then_some(timeout)).await,
    }
}

/// An installation with a connection to its Elasticsearch.
struct EsSession {
    installation: Installation,
    client: EsClient,
    _forward: Option<Box<dyn Forward>>,
}

impl EsSession {
    /// Reads the configuration and connects: to `--es-url`, else through a port-forward to
    /// `elasticsearch.service`. Checks the server answers before anything else happens.
    async fn open(context: &Context, source: &EsArgs) -> Result<Self, CliError> {
        if let Some(url) = &source.es_url {
            backup_core::location::check_endpoint("--es-url", url)
                .map_err(|e| CliError::user(anyhow!(e)))?;
        }
        let installation = Installation::load(context, &source.config).await?;
        let section = installation
            .config
            .elasticsearch()
            .map_err(CliError::user)?;
        let (url, forward) = match &source.es_url {
            Some(url) => (url.clone(), None),
            None => {
                let service = &section.service;
                if service.name.is_empty() || service.port == 0 {
                    return Err(CliError::user(anyhow!(
                        "configuration field elasticsearch.service (name and port) is required unless --es-url is given"
                    )));
                }
                let forward = installation
                    .cluster
                    .forward_service(&installation.namespace, &service.name, service.port)
                    .await?;
                (format!("http://{}", forward.local_addr()), Some(forward))
            }
        };
        let password = std::env::var("KBACKUP_ES_PASSWORD").ok();
        let auth = match (&source.es_username, &password) {
            (Some(user), Some(password)) => Some((user.as_str(), password.as_str())),
            (Some(_), None) => {
                return Err(CliError::user(anyhow!(
                    "--es-username needs the password in KBACKUP_ES_PASSWORD"
                )));
            }
            (None, _) => None,
        };
        let client = EsClient::connect(&url, auth)?;
        client.server_info().await?;
        Ok(Self {
            installation,
            client,
            _forward: forward,
        })
    }

    /// The repository and the restore settings, checked.
    fn restore_settings(
        &self,
    ) -> Result<(String, backup_core::stackstate::ElasticsearchRestore), CliError> {
        let settings = self
            .installation
            .config
            .elasticsearch_restore()
            .map_err(CliError::user)?
            .clone();
        Ok((self.repository()?, settings))
    }

    /// The repository the commands work with.
    fn repository(&self) -> Result<String, CliError> {
        Ok(self
            .installation
            .config
            .elasticsearch_repository()
            .map_err(CliError::user)?
            .to_owned())
    }
}
