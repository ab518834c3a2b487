//! The repository the flags name: its storage, its password (variable, Secret or file),
//! opened; a snapshot looked up in it; its errors in the command line's words.

use crate::cli::{RepoArgs, SnapshotFilter};
use crate::context::Context;
use crate::exit::CliError;
use anyhow::anyhow;
use backup_core::RepositoryLocation;
use backup_core::cluster::SecretValue;
use backup_core::model::NextStep;
use backup_repository::{Repository, RepositoryError, SnapshotFile};
use backup_usecases::credentials::{CredentialError, PasswordSource, read_password};
use backup_usecases::selection::{self, SelectionError};

impl From<RepositoryError> for CliError {
    fn from(error: RepositoryError) -> Self {
        match error {
            RepositoryError::Storage(storage) => storage.into(),
            RepositoryError::NotARepository(_) => {
                CliError::user(anyhow!("{error} (create one with `kbackup repo init`)"))
            }
            RepositoryError::TargetNotEmpty { .. } => CliError::user(anyhow!(
                "{error}; use {} to replace them",
                crate::next_step::command(&NextStep::Overwrite)
            )),
            RepositoryError::EmptyRetentionPolicy => {
                CliError::user(anyhow!("{error}: give at least one --keep-* rule"))
            }
            other => CliError::user(other),
        }
    }
}

/// The password: `KBACKUP_PASSWORD`, else `--encryption-secret`, else `--password-file`
/// (held as a [`SecretValue`]: its Debug shows nothing).
pub(crate) async fn password(context: &Context, args: &RepoArgs) -> Result<SecretValue, CliError> {
    let source = if let Some(text) = std::env::var_os("KBACKUP_PASSWORD").filter(|p| !p.is_empty())
    {
        PasswordSource::Value(SecretValue::new(text.into_encoded_bytes()))
    } else if let Some(reference) = &args.encryption_secret {
        let (namespace, name) = reference.split_once('/').ok_or_else(|| {
            CliError::user(anyhow!(
                "--encryption-secret '{reference}' is not namespace/name"
            ))
        })?;
        PasswordSource::Secret {
            namespace: namespace.into(),
            name: name.into(),
        }
    } else if let Some(path) = &args.password_file {
        PasswordSource::File(path.clone())
    } else {
        return Err(CliError::user(anyhow!(
            "no password: set KBACKUP_PASSWORD, or pass --encryption-secret NAMESPACE/NAME or --password-file FILE"
        )));
    };
    let cluster = match source.needs_cluster() {
        true => Some(backup_k8s::KubeCluster::connect(&context.kube).await?),
        false => None,
    };
    read_password(&source, cluster.as_ref())
        .await
        .map_err(|error| match error {
            CredentialError::Cluster(error) => error.into(),
            other => CliError::user(other),
        })
}

pub(crate) async fn storage(
    context: &Context,
    args: &RepoArgs,
    create: bool,
) -> Result<std::sync::Arc<dyn backup_core::ObjectStorage>, CliError> {
    let location = RepositoryLocation::parse(&args.repo).map_err(CliError::user)?;
    let mut options = context.storage_options(&args.storage).await?;
    options.create_missing_dir = create;
    Ok(backup_storage::open(&location, &options).await?)
}

/// Opens the repository with the password from the environment or the password file.
pub(crate) async fn open(context: &Context, args: &RepoArgs) -> Result<Repository, CliError> {
    let password = password(context, args).await?;
    Ok(Repository::open(storage(context, args, false).await?, password.expose()).await?)
}

/// The snapshot `wanted` names among those `among` selects: `latest` (the newest), or a
/// unique id prefix.
pub(crate) fn find_snapshot<'s>(
    snapshots: &'s [SnapshotFile],
    wanted: &str,
    among: &SnapshotFilter,
    repo: &str,
) -> Result<&'s SnapshotFile, CliError> {
    selection::find_snapshot(snapshots, wanted, &among.into()).map_err(|error| match error {
        SelectionError::NotFound { .. } => CliError::user(anyhow!("{error} in {repo}")),
        other => CliError::user(other),
    })
}

/// Says so when a backup reused packs an interrupted backup had uploaded without indexing.
pub(crate) fn note_adopted(context: &Context, adopted_packs: usize) {
    if adopted_packs > 0 {
        context.info(&format!(
            "reused {adopted_packs} packs an interrupted backup had uploaded"
        ));
    }
}
