//! `kbackup repo init`.

use crate::cli::{KdfArgs, RepoArgs};
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::repository::{password, storage};
use anyhow::anyhow;
use backup_repository::{InitOptions, Repository};

/// Creates a repository.
pub async fn init(
    context: &Context,
    repo: &RepoArgs,
    compression_level: i32,
    kdf: KdfArgs,
) -> CliResult {
    let password = password(context, repo).await?;
    let options = InitOptions {
        compression_level,
        kdf: kdf.params().map_err(|e| CliError::user(anyhow!(e)))?,
        ..InitOptions::default()
    };
    let repository = Repository::init(
        storage(context, repo, true).await?,
        password.expose(),
        options,
    )
    .await?;
    context.info(&format!(
        "created repository {} at {}",
        repository.config().id,
        repository.storage().location()
    ));
    Ok(Exit::Success)
}
