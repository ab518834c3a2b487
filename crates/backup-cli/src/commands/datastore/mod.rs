//! `kbackup stackgraph|settings|victoriametrics ...`: the Job-based data stores of a
//! StackState / SUSE Observability installation, compatible with `sts-backup`.

mod backup;
mod expire;
mod finalize;
mod kind;
mod list;
mod restore;

use crate::cli::{
    DataStoreCommand, SettingsCommand, StackGraphCommand, StackStateArgs, VictoriaMetricsCommand,
};
use crate::context::Context;
use crate::exit::{CliError, CliResult};

pub(crate) use super::installation::Installation;
use backup_core::cluster::{ContainerLog, Forward, PortForwarder};
use backup_core::{ObjectStorage, RepositoryLocation, StorageScheme};
use backup_k8s::datastore::JobRequest;
use backup_storage::StorageOptions;
use kind::{DataStore, SpecOptions};
use std::sync::Arc;

/// Runs a stackgraph command.
pub async fn stackgraph(context: &Context, command: StackGraphCommand) -> CliResult {
    let kind = DataStore::StackGraph;
    match command {
        StackGraphCommand::Restore { source, restore } => {
            restore::run(context, kind, &source, &restore, SpecOptions::default()).await
        }
        StackGraphCommand::Backup { source, timeout } => {
            backup::run(context, &source, timeout).await
        }
        StackGraphCommand::Expire {
            source,
            older_than,
            dry_run,
        } => expire::run(context, &source, older_than, dry_run).await,
        StackGraphCommand::Common(common) => run_common(context, kind, common).await,
    }
}

/// Runs a settings command.
pub async fn settings(context: &Context, command: SettingsCommand) -> CliResult {
    let kind = DataStore::Settings;
    match command {
        SettingsCommand::Restore {
            source,
            restore,
            skip_stackpacks,
            from_old_pvc,
        } => {
            let options = SpecOptions {
                skip_stackpacks,
                from_old_pvc,
            };
            restore::run(context, kind, &source, &restore, options).await
        }
        SettingsCommand::Common(common) => run_common(context, kind, common).await,
    }
}

/// Runs a victoriametrics command.
pub async fn victoria_metrics(context: &Context, command: VictoriaMetricsCommand) -> CliResult {
    let kind = DataStore::VictoriaMetrics;
    match command {
        VictoriaMetricsCommand::Restore { source, restore } => {
            restore::run(context, kind, &source, &restore, SpecOptions::default()).await
        }
        VictoriaMetricsCommand::Common(common) => run_common(context, kind, common).await,
    }
}

async fn run_common(context: &Context, kind: DataStore, command: DataStoreCommand) -> CliResult {
    match command {
        DataStoreCommand::List { source } => list::run(context, kind, &source).await,
        DataStoreCommand::CheckAndFinalize {
            source,
            job,
            wait,
            timeout,
        } => finalize::run(context, kind, &source, &job, wait.then_some(timeout)).await,
    }
}

impl Installation {
    /// The object store of the archives: `endpoint` when given (`--storage-endpoint`,
    /// `stackgraph.storageEndpoint`), else a port-forward to the MinIO Service, with the
    /// configuration's keys. Keep it alive while using the buckets it opens.
    async fn object_store(
        &self,
        context: &Context,
        source: &StackStateArgs,
        endpoint: Option<String>,
    ) -> Result<ObjectStore, CliError> {
        let mut options = context.storage_options(&source.storage).await?;
        let (endpoint, forward) = match endpoint {
            Some(endpoint) => (endpoint, None),
            None => {
                let service = &self
                    .config
                    .object_store_service()
                    .map_err(CliError::user)?
                    .service;
                let forward = self
                    .cluster
                    .forward_service(&self.namespace, &service.name, service.port)
                    .await?;
                (format!("http://{}", forward.local_addr()), Some(forward))
            }
        };
        options.endpoint = Some(endpoint);
        if let Some(store) = self
            .config
            .object_store()
            .filter(|s| !s.access_key.expose().is_empty())
        {
            options.access_key_id = Some(store.access_key.expose().to_owned());
            options.secret_access_key =
                Some(backup_storage::Secret::new(store.secret_key.expose()));
        }
        Ok(ObjectStore {
            options,
            _forward: forward,
        })
    }

    /// A request for `archive` with the object store keys and a run id from the current
    /// time (`20261121t100000`, as sts-backup names its Jobs).
    fn job_request(&self, archive: String) -> Result<JobRequest, CliError> {
        let store = self
            .config
            .object_store_credentials()
            .map_err(CliError::user)?;
        Ok(JobRequest {
            archive,
            access_key: store.access_key.expose().to_owned(),
            secret_key: store.secret_key.clone(),
            run_id: chrono::Utc::now().format("%Y%m%dt%H%M%S").to_string(),
        })
    }
}

/// Prints the logs of every container of a failed Job on stderr.
fn print_logs(logs: &[ContainerLog]) {
    for log in logs {
        eprintln!(
            "--- logs of pod {} container {} ---\n{}",
            log.pod,
            log.container,
            log.text.trim_end()
        );
    }
}

/// The object store of the archives, with the port-forward that reaches it.
struct ObjectStore {
    options: StorageOptions,
    _forward: Option<Box<dyn Forward>>,
}

impl ObjectStore {
    /// One bucket (below `prefix`).
    async fn bucket(&self, bucket: &str, prefix: &str) -> Result<Arc<dyn ObjectStorage>, CliError> {
        let location = RepositoryLocation {
            scheme: StorageScheme::S3,
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            path: None,
        };
        Ok(backup_storage::open(&location, &self.options).await?)
    }
}
