//! `kbackup backup volumes`, `kbackup restore volumes` and the mover pods' own commands.

mod backup;
mod mover;
mod restore;

pub use backup::backup;
pub(crate) use backup::{hooks_file, report_moved};
pub use mover::mover;
pub use restore::restore;

use crate::cli::{MoverArgs, RepoArgs};
use crate::context::Context;
use crate::exit::CliError;
use crate::repository::password;
use anyhow::anyhow;
use backup_core::cluster::SecretValue;
use backup_core::{RepositoryLocation, StorageScheme};
use backup_usecases::volumes::backup::VolumeError;
use backup_usecases::volumes::manifests::MoverSettings;
use std::collections::BTreeMap;

impl From<VolumeError> for CliError {
    fn from(error: VolumeError) -> Self {
        match error {
            VolumeError::Cluster(error) => error.into(),
            VolumeError::Repository(error) => error.into(),
            VolumeError::Discovery(
                backup_usecases::volumes::discovery::DiscoveryError::Cluster(error),
            ) => error.into(),
            other => CliError::user(other),
        }
    }
}

/// How the movers run, with the credentials this command resolved (the object store's, the
/// endpoint the cluster sees, the password) for their Secret.
pub(crate) async fn mover_settings(
    context: &Context,
    repo: &RepoArgs,
    args: &MoverArgs,
) -> Result<MoverSettings, CliError> {
    mover_settings_with_claim(context, repo, args, None).await
}

/// [`mover_settings`] for a repository in the claim `storage_claim` (a `file://` URL below
/// where each mover mounts it), or in an object store when none.
pub(crate) async fn mover_settings_with_claim(
    context: &Context,
    repo: &RepoArgs,
    args: &MoverArgs,
    storage_claim: Option<String>,
) -> Result<MoverSettings, CliError> {
    let location = RepositoryLocation::parse(&repo.repo).map_err(CliError::user)?;
    let reachable = match location.scheme {
        StorageScheme::File => storage_claim.is_some(),
        StorageScheme::Memory => false,
        _ => true,
    };
    if !reachable {
        return Err(CliError::user(anyhow!(
            "the movers run in the cluster and cannot reach {}: give an object store repository (s3://, az://, gs://)",
            repo.repo
        )));
    }
    let mut options = context.storage_options(&repo.storage).await?;
    if let Some(endpoint) = &args.mover_endpoint {
        match location.scheme {
            StorageScheme::Azure => options.azure_endpoint = Some(endpoint.clone()),
            _ => options.endpoint = Some(endpoint.clone()),
        }
    }
    let mut credentials: BTreeMap<String, SecretValue> = options
        .variables()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), SecretValue::new(value.into_bytes())))
        .collect();
    credentials.insert("KBACKUP_PASSWORD".into(), password(context, repo).await?);
    Ok(MoverSettings {
        image: args.mover_image.clone(),
        memory: args.mover_memory.clone(),
        cpu: args.mover_cpu.clone(),
        concurrency: usize::from(args.mover_concurrency),
        start_timeout: args.mover_start_timeout,
        timeout: args.mover_timeout,
        repository: repo.repo.clone(),
        credentials,
        tolerations: args
            .mover_toleration
            .iter()
            .map(|key| serde_json::json!({"key": key, "operator": "Exists"}))
            .collect(),
        node_selector: args.mover_node_selector.iter().cloned().collect(),
        storage_claim,
        verify: false,
    })
}

/// `kbackup volumes resume`: the workloads a quiesced backup left at zero, scaled back.
pub async fn resume(context: &Context) -> crate::exit::CliResult {
    let cluster = backup_k8s::KubeCluster::connect(&context.kube).await?;
    let namespace = context.namespace_in(&cluster);
    let resumed = backup_usecases::volumes::quiesce::resume_quiesced(&cluster, &namespace).await?;
    if resumed.is_empty() {
        context.info(&format!(
            "no workload of namespace {namespace} was left quiesced"
        ));
    }
    for (workload, replicas) in resumed {
        context.info(&format!("{workload} scaled back to {replicas} replicas"));
    }
    Ok(crate::exit::Exit::Success)
}
