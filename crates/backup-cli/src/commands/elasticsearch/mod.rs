//! `kbackup elasticsearch configure|list|describe|snapshot|delete|restore|check-and-finalize`:
//! Elasticsearch snapshots of a StackState / SUSE Observability installation, compatible
//! with `sts-backup`.

mod configure;
mod indices;
mod restore;
mod snapshots;

use super::installation::{self, Installation};
use crate::cli::{ElasticsearchCommand, EsArgs};
use crate::context::Context;
use crate::exit::{CliError, CliResult};
use anyhow::anyhow;
use backup_core::Secret;
use backup_elasticsearch::EsClient;
use backup_usecases::stackstate::{EsConnection, EsCredentials};

/// Runs an elasticsearch command.
pub async fn run(context: &Context, command: ElasticsearchCommand) -> CliResult {
    match command {
        ElasticsearchCommand::Configure {
            source,
            dry_run,
            no_slm,
        } => configure::run(context, &source, dry_run, no_slm).await,
        ElasticsearchCommand::List { source } => snapshots::list(context, &source).await,
        ElasticsearchCommand::ListIndices { source, pattern } => {
            indices::list(context, &source, pattern.as_deref()).await
        }
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
    connection: EsConnection,
}

impl EsSession {
    /// Reads the configuration and connects: to `--es-url`, else through a port-forward to
    /// `elasticsearch.service`. Checks the server answers before anything else happens.
    async fn open(context: &Context, source: &EsArgs) -> Result<Self, CliError> {
        if let Some(url) = &source.es_url {
            backup_core::location::check_endpoint("--es-url", url)
                .map_err(|e| CliError::user(anyhow!(e)))?;
        }
        let installation = installation::load(context, &source.config).await?;
        let password = std::env::var("KBACKUP_ES_PASSWORD").ok();
        let credentials = match (&source.es_username, password) {
            (Some(user), Some(password)) => Some(EsCredentials {
                username: user.clone(),
                password: Secret::new(password),
            }),
            (Some(_), None) => {
                return Err(CliError::user(anyhow!(
                    "--es-username needs the password in KBACKUP_ES_PASSWORD"
                )));
            }
            (None, _) => None,
        };
        let connection = installation
            .connect_elasticsearch(source.es_url.as_deref(), credentials.as_ref())
            .await?;
        Ok(Self {
            installation,
            connection,
        })
    }

    /// The client.
    fn client(&self) -> &EsClient {
        &self.connection.client
    }
}
