//! `kbackup storage ls|check|rm|cp`.

mod check;
mod cp;
mod ls;
mod rm;

use crate::cli::{StorageArgs, StorageCommand};
use crate::context::Context;
use crate::exit::{CliError, CliResult};
use backup_core::{ObjectStorage, RepositoryLocation};
use backup_storage::StorageOptions;
use std::sync::Arc;

/// Runs a storage command.
pub async fn run(context: &Context, command: StorageCommand) -> CliResult {
    match command {
        StorageCommand::Ls {
            url,
            recursive,
            storage,
        } => ls::run(context, &url, recursive, &storage).await,
        StorageCommand::Check {
            url,
            create,
            storage,
        } => check::run(context, &url, create, &storage).await,
        StorageCommand::Rm {
            url,
            keys,
            recursive,
            storage,
        } => rm::run(context, &url, &keys, recursive, &storage).await,
        StorageCommand::Cp { src, dst, storage } => cp::run(context, &src, &dst, &storage).await,
    }
}

/// Opens a URL as storage with the resolved options (returned too, for their upload settings).
async fn open(
    context: &Context,
    location: &RepositoryLocation,
    args: &StorageArgs,
) -> Result<(Arc<dyn ObjectStorage>, StorageOptions), CliError> {
    open_creating(context, location, args, false).await
}

/// [`open`], making a missing `file://` directory first when `create`.
async fn open_creating(
    context: &Context,
    location: &RepositoryLocation,
    args: &StorageArgs,
    create: bool,
) -> Result<(Arc<dyn ObjectStorage>, StorageOptions), CliError> {
    let mut options = context.storage_options(args).await?;
    options.create_missing_dir = create;
    Ok((backup_storage::open(location, &options).await?, options))
}

/// Parses a storage URL, as a user error when it is bad.
fn parse_location(url: &str) -> Result<RepositoryLocation, CliError> {
    RepositoryLocation::parse(url).map_err(CliError::user)
}
