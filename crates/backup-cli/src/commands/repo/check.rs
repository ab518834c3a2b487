//! `kbackup repo check [--read-data PERCENT]`.

use crate::cli::RepoArgs;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use crate::repository::open;
use anyhow::anyhow;
use backup_repository::CheckReport;

impl Tabular for CheckReport {
    fn headers() -> Vec<&'static str> {
        vec!["SNAPSHOTS", "PACKS", "BLOBS", "PACKS READ", "PROBLEMS"]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.snapshots.to_string(),
            self.packs.to_string(),
            self.blobs.to_string(),
            self.packs_read.to_string(),
            self.errors.len().to_string(),
        ]
    }
}

/// Checks the repository's structure, and reads `read_data` percent of its packs.
pub async fn check(context: &Context, repo: &RepoArgs, read_data: Option<u8>) -> CliResult {
    let repository = open(context, repo).await?;
    let percent = read_data.unwrap_or(0);
    let report = repository.check(percent).await?;
    emit(context.output, std::slice::from_ref(&report))?;
    for warning in &report.warnings {
        context.info(&format!("warning: {warning}"));
    }
    if report.errors.is_empty() {
        let scope = match percent {
            0 => String::new(),
            100 => ", all data read".into(),
            _ => format!(
                ", {} of {} packs read ({percent}%)",
                report.packs_read, report.packs
            ),
        };
        context.info(&format!(
            "no problems found ({} snapshots, {} packs, {} blobs{scope})",
            report.snapshots, report.packs, report.blobs
        ));
        return Ok(Exit::Success);
    }
    for error in &report.errors {
        eprintln!("problem: {error}");
    }
    Err(CliError::user(anyhow!(
        "{} problem(s) found in {}",
        report.errors.len(),
        repo.repo
    )))
}
