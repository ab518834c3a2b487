//! `kbackup repo prune`: the plan shown (and confirmed) is the plan run.

use crate::cli::RepoArgs;
use crate::context::Context;
use crate::exit::{CliResult, Exit};
use crate::output::{Tabular, emit};
use crate::repository::open;
use backup_repository::PruneOptions;
use indicatif::HumanBytes;
use std::time::Duration;

impl Tabular for backup_repository::PruneReport {
    fn headers() -> Vec<&'static str> {
        vec![
            "PACKS DELETED",
            "FREED",
            "MARKED",
            "AWAITING",
            "REPACKED",
            "PARTLY USED",
            "TOO RECENT",
            "INDEX REPLACED",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.packs_deleted.to_string(),
            HumanBytes(self.bytes_freed).to_string(),
            self.packs_marked.to_string(),
            self.packs_awaiting.to_string(),
            self.packs_repacked.to_string(),
            self.packs_partly_used.to_string(),
            self.packs_too_recent.to_string(),
            self.index_objects_replaced.to_string(),
        ]
    }
}

/// Deletes (or with `dry_run` shows) the packs no snapshot uses.
pub async fn prune(
    context: &Context,
    repo: &RepoArgs,
    grace: Duration,
    repack_unused: u8,
    dry_run: bool,
) -> CliResult {
    let repository = open(context, repo).await?;
    let options = PruneOptions {
        repack_unused,
        ..PruneOptions::new(grace, chrono::Utc::now())
    };
    let plan = repository.plan_prune(&options).await?;
    let planned = &plan.report;
    if !dry_run && planned.packs_deleted > 0 {
        context.confirm(&format!(
            "Delete {} unused pack(s) ({}) from {}?",
            planned.packs_deleted,
            HumanBytes(planned.bytes_freed),
            repo.repo
        ))?;
    }
    // The plan confirmed is the plan run: the repository is not read again.
    let report = match dry_run {
        true => plan.report,
        false => repository.execute_prune(plan).await?,
    };
    emit(context.output, std::slice::from_ref(&report))?;
    context.info(&format!(
        "{} pack(s), {} {}; {} pack(s) {} for deletion by a prune {} from now ({} marked earlier), \
         {} of them repacked ({} copied); {} partly used kept whole; {} unused but younger than that kept",
        report.packs_deleted,
        HumanBytes(report.bytes_freed),
        if dry_run {
            "would be freed (--dry-run)"
        } else {
            "freed"
        },
        report.packs_marked,
        if dry_run { "would be marked" } else { "marked" },
        humantime::format_duration(grace),
        report.packs_awaiting,
        report.packs_repacked,
        HumanBytes(report.bytes_repacked),
        report.packs_partly_used,
        report.packs_too_recent,
    ));
    Ok(Exit::Success)
}
