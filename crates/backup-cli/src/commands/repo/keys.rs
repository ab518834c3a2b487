//! `kbackup repo info` and `kbackup repo key list|add|remove|passwd`.

use crate::cli::{KeyCommand, RepoArgs};
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use crate::repository::open;
use anyhow::anyhow;
use backup_core::ObjectStorageExt;
use backup_core::cluster::SecretValue;
use backup_repository::KeyInfo;
use indicatif::HumanBytes;
use serde::Serialize;
use std::path::Path;

impl Tabular for KeyInfo {
    fn headers() -> Vec<&'static str> {
        vec!["ID", "CURRENT", "ARGON2 MEMORY", "PASSES"]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            if self.current {
                "*".into()
            } else {
                String::new()
            },
            HumanBytes(u64::from(self.memory_kib) * 1024).to_string(),
            self.iterations.to_string(),
        ]
    }
}

/// The new password: `KBACKUP_NEW_PASSWORD`, else the first line of the file. Never empty.
fn new_password(file: Option<&Path>) -> Result<SecretValue, CliError> {
    let password = match (std::env::var_os("KBACKUP_NEW_PASSWORD"), file) {
        (Some(text), _) if !text.is_empty() => text.into_encoded_bytes(),
        (_, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| CliError::user(anyhow!("cannot read {}: {e}", path.display())))?
            .lines()
            .next()
            .unwrap_or_default()
            .as_bytes()
            .to_vec(),
        _ => {
            return Err(CliError::user(anyhow!(
                "no new password: set KBACKUP_NEW_PASSWORD or pass --new-password-file FILE"
            )));
        }
    };
    if password.is_empty() {
        return Err(CliError::user(anyhow!("the new password is empty")));
    }
    Ok(SecretValue::new(password))
}

/// Runs a key command.
pub async fn key(context: &Context, command: KeyCommand) -> CliResult {
    match command {
        KeyCommand::List { repo } => {
            let repository = open(context, &repo).await?;
            emit(context.output, &repository.keys().await?)?;
        }
        KeyCommand::Add {
            repo,
            new_password_file,
            kdf,
        } => {
            let password = new_password(new_password_file.as_deref())?;
            let repository = open(context, &repo).await?;
            let name = repository
                .add_password(
                    password.expose(),
                    kdf.params().map_err(|e| CliError::user(anyhow!(e)))?,
                )
                .await?;
            context.info(&format!("added key {}", name.trim_start_matches("keys/")));
        }
        KeyCommand::Remove { id, repo } => {
            let repository = open(context, &repo).await?;
            context.confirm(&format!(
                "Remove key {id}? Its password will no longer open {}",
                repo.repo
            ))?;
            repository.remove_key(&id).await?;
            context.info(&format!("removed key {id}"));
        }
        KeyCommand::Passwd {
            repo,
            new_password_file,
            kdf,
        } => {
            let password = new_password(new_password_file.as_deref())?;
            let mut repository = open(context, &repo).await?;
            let id = repository
                .change_password(
                    password.expose(),
                    kdf.params().map_err(|e| CliError::user(anyhow!(e)))?,
                )
                .await?;
            context.info(&format!(
                "password changed (key {id}); the old one no longer opens the repository"
            ));
        }
    }
    Ok(Exit::Success)
}

/// `repo info` as data.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Info {
    id: String,
    format_version: u32,
    location: String,
    chunk_sizes: String,
    compression_level: i32,
    keys: usize,
    snapshots: usize,
    packs: usize,
    pack_bytes: u64,
    index_objects: usize,
}

impl Tabular for Info {
    fn headers() -> Vec<&'static str> {
        vec![
            "ID",
            "FORMAT",
            "CHUNKS MIN/AVG/MAX",
            "ZSTD",
            "KEYS",
            "SNAPSHOTS",
            "PACKS",
            "STORED",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.format_version.to_string(),
            self.chunk_sizes.clone(),
            self.compression_level.to_string(),
            self.keys.to_string(),
            self.snapshots.to_string(),
            self.packs.to_string(),
            HumanBytes(self.pack_bytes).to_string(),
        ]
    }
}

/// Describes the repository.
pub async fn info(context: &Context, repo: &RepoArgs) -> CliResult {
    let repository = open(context, repo).await?;
    let storage = repository.storage();
    let packs = storage.list_all("data/").await?;
    let config = repository.config();
    let size = |n: u32| HumanBytes(u64::from(n)).to_string();
    let info = Info {
        id: config.id.clone(),
        format_version: config.version,
        location: storage.location(),
        chunk_sizes: format!(
            "{}/{}/{}",
            size(config.chunker.min_size),
            size(config.chunker.avg_size),
            size(config.chunker.max_size)
        ),
        compression_level: config.compression_level,
        keys: repository.keys().await?.len(),
        snapshots: storage.list_all("snapshots/").await?.len(),
        packs: packs.len(),
        pack_bytes: packs.iter().map(|p| p.size).sum(),
        index_objects: storage.list_all("index/").await?.len(),
    };
    emit(context.output, &[info])?;
    Ok(Exit::Success)
}
