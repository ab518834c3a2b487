//! `kbackup stackgraph expire --older-than 30d [--dry-run]`.

use crate::cli::StackStateArgs;
use crate::commands::installation;
use crate::context::Context;
use crate::exit::{CliResult, Exit};
use crate::output::emit;
use std::time::Duration;

/// Deletes (or with `dry_run` lists) the archives older than the retention.
pub async fn run(
    context: &Context,
    source: &StackStateArgs,
    older_than: Duration,
    dry_run: bool,
) -> CliResult {
    let installation = installation::load(context, &source.config).await?;
    let storage = context.storage_options(&source.storage).await?;
    let endpoint = source.storage.storage_endpoint.clone();
    let plan = installation
        .plan_expiry(storage, endpoint, older_than, chrono::Utc::now())
        .await?;
    let expired = &plan.archives;
    emit(context.output, expired)?;
    let location = &plan.location;
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
    plan.execute().await?;
    context.info(&format!(
        "deleted {} archive(s) from {location}",
        expired.len()
    ));
    Ok(Exit::Success)
}
