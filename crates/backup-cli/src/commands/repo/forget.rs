//! `kbackup snapshot forget --keep-*`: the plan shown (and confirmed) is the plan run.

use crate::cli::RepoArgs;
use crate::context::Context;
use crate::exit::{CliResult, Exit};
use crate::output::{Tabular, emit};
use crate::repository::open;
use backup_core::{RetentionDecision, RetentionPolicy};

impl Tabular for RetentionDecision {
    fn headers() -> Vec<&'static str> {
        vec!["ID", "TIME", "KEEP", "REASONS"]
    }
    fn cells(&self) -> Vec<String> {
        let keep = if self.keep { "keep" } else { "remove" };
        vec![
            self.id.short().to_owned(),
            self.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            keep.into(),
            self.reasons.join(", "),
        ]
    }
}

/// Removes (or with `dry_run` shows) the snapshots `policy` does not keep.
pub async fn forget(
    context: &Context,
    repo: &RepoArgs,
    policy: RetentionPolicy,
    dry_run: bool,
) -> CliResult {
    let repository = open(context, repo).await?;
    let plan = repository.plan_forget(&policy).await?;
    emit(context.output, &plan.decisions)?;
    let removed = plan.removed().count();
    if dry_run || removed == 0 {
        context.info(&format!(
            "{removed} snapshot(s) would be removed{}",
            if dry_run {
                " (--dry-run: nothing deleted)"
            } else {
                ""
            }
        ));
        return Ok(Exit::Success);
    }
    context.confirm(&format!("Remove {removed} snapshot(s) from {}?", repo.repo))?;
    // Exactly what was shown: a snapshot written since is not judged by this plan.
    let removed = repository.forget(&plan).await?;
    context.info(&format!(
        "removed {removed} snapshot(s); their data is freed by a later prune"
    ));
    Ok(Exit::Success)
}
