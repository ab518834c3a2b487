//! `kbackup stackgraph list|restore|check-and-finalize`: StackGraph backups of a StackState /
//! SUSE Observability installation, compatible with `sts-backup`.

mod backup;
mod expire;
mod finalize;
mod list;
mod restore;

use crate::cli::{StackGraphCommand, StackStateArgs};
use crate::context::Context;
use crate::exit::{CliError, CliResult};
use anyhow::anyhow;
use backup_core::cluster::{ConfigObjects, ContainerLog, Forward, PortForwarder};
use backup_core::stackstate::{ArchiveCatalog, DEFAULT_CONFIG_KEY, StackStateConfig};
use backup_core::{ObjectStorage, ObjectStorageExt, RepositoryLocation, StorageScheme};
use backup_k8s::KubeCluster;
use backup_k8s::datastore::{DataStoreSpec, GRAPH_SUFFIX, JobRequest, stackgraph_spec};
use std::sync::Arc;

/// Runs a stackgraph command.
pub async fn run(context: &Context, command: StackGraphCommand) -> CliResult {
    match command {
        StackGraphCommand::List { source } => list::run(context, &source).await,
        StackGraphCommand::Restore {
            source,
            archive,
            background,
            dry_run,
            timeout,
            pods_timeout,
            ..
        } => {
            let options = restore::Options {
                archive,
                background,
                dry_run,
                timeout,
                pods_timeout,
            };
            restore::run(context, &source, options).await
        }
        StackGraphCommand::Backup { source, timeout } => {
            backup::run(context, &source, timeout).await
        }
        StackGraphCommand::Expire {
            source,
            older_than,
            dry_run,
        } => expire::run(context, &source, older_than, dry_run).await,
        StackGraphCommand::CheckAndFinalize {
            source,
            job,
            wait,
            timeout,
        } => finalize::run(context, &source, &job, wait.then_some(timeout)).await,
    }
}

/// The cluster, namespace and configuration of one installation.
struct Installation {
    cluster: KubeCluster,
    namespace: String,
    config: StackStateConfig,
}

impl Installation {
    /// Connects and reads the configuration: the `stackstate:` section of the configuration
    /// file if there is one, else the ConfigMap with the Secret merged over it.
    async fn load(context: &Context, source: &StackStateArgs) -> Result<Self, CliError> {
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

    /// The archive bucket, through a port-forward to the MinIO Service unless an endpoint is
    /// given (`--storage-endpoint` or `stackgraph.storageEndpoint`). Keep the returned forward
    /// alive while using the storage.
    async fn archives(
        &self,
        context: &Context,
        source: &StackStateArgs,
    ) -> Result<Archives, CliError> {
        let section = self.config.stackgraph().map_err(CliError::user)?;
        let mut options = context.storage_options(&source.storage).await?;
        let (endpoint, forward) = match source
            .storage
            .storage_endpoint
            .clone()
            .or_else(|| section.storage_endpoint.clone())
        {
            Some(endpoint) => (endpoint, None),
            None => {
                let service = &self
                    .config
                    .object_store()
                    .expect("checked by stackgraph()")
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
        let location = RepositoryLocation {
            scheme: StorageScheme::S3,
            bucket: section.bucket.clone(),
            prefix: section.s3_prefix.trim_matches('/').to_owned(),
            path: None,
        };
        let storage = backup_storage::open(&location, &options).await?;
        Ok(Archives {
            storage,
            _forward: forward,
        })
    }
}

impl Installation {
    /// The StackGraph Job spec, and a request for `archive` with the object store keys and a
    /// run id from the current time (`20261121t100000`, as sts-backup names its Jobs).
    fn stackgraph_job(
        &self,
        source: &StackStateArgs,
        archive: String,
    ) -> Result<(DataStoreSpec, JobRequest), CliError> {
        let spec = stackgraph_spec(&self.config, source.storage.storage_endpoint.as_deref())
            .map_err(CliError::user)?;
        let store = self
            .config
            .object_store()
            .expect("validated by stackgraph_spec");
        let request = JobRequest {
            archive,
            access_key: store.access_key.expose().to_owned(),
            secret_key: store.secret_key.expose().to_owned(),
            run_id: chrono::Utc::now().format("%Y%m%dt%H%M%S").to_string(),
        };
        Ok((spec, request))
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

/// The archive bucket, with the port-forward that reaches it.
struct Archives {
    storage: Arc<dyn ObjectStorage>,
    _forward: Option<Box<dyn Forward>>,
}

impl Archives {
    /// Every archive (all pages of the listing), newest first.
    async fn catalog(&self) -> Result<ArchiveCatalog, CliError> {
        let objects = self.storage.list_all("").await?;
        Ok(ArchiveCatalog::from_objects(&objects, GRAPH_SUFFIX))
    }
}
