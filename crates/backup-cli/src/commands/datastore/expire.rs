//! `kbackup stackgraph expire --older-than 30d [--dry-run]`.

use super::Installation;
use super::kind::file_catalog;
use crate::cli::StackStateArgs;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::emit;
use anyhow::anyhow;
use backup_core::stackstate::Archive;
use backup_k8s::datastore::GRAPH_SUFFIX;
use std::time::Duration;

/// Deletes (or with `dry_run` lists) the archives older than the retention.
pub async fn run(
    context: &Context,
    source: &StackStateArgs,
    older_than: Duration,
    dry_run: bool,
) -> CliResult {
    let installation = Installation::load(context, &source.config).await?;
    let section = installation.config.stackgraph().map_err(CliError::user)?;
    let endpoint = source
        .storage
        .storage_endpoint
        .clone()
        .or_else(|| section.storage_endpoint.clone());
    let store = installation.object_store(context, source, endpoint).await?;
    let bucket = store.bucket(&section.bucket, &section.s3_prefix).await?;
    let catalog = file_catalog(bucket.as_ref(), GRAPH_SUFFIX).await?;
    let retention = chrono::Duration::from_std(older_than)
        .map_err(|_| CliError::user(anyhow!("retention {older_than:?} is too long")))?;
    let cutoff = chrono::Utc::now() - retention;
    let expired: Vec<Archive> = catalog.older_than(cutoff).into_iter().cloned().collect();
    emit(context.output, &expired)?;
    let location = bucket.location();
    if expired.is_empty() || dry_run {
        context.info(&format!(
            "{} archive(s) in {location} older than {}{}",
            expired.len(),
            humantime::format_duration(older_than),
            if dry_run {
                "; nothing deleted (--dry-run)"
            } else {
                ""
            }
        ));
        return Ok(Exit::Success);
    }
    context.confirm(&format!(
        "Delete these {} archive(s) from {location}?",
        expired.len()
    ))?;
    for archive in &expired {
        for part in &archive.parts {
            bucket.delete(part).await?;
        }
    }
    context.info(&format!(
        "deleted {} archive(s) from {location}",
        expired.len()
    ));
    Ok(Exit::Success)
}
