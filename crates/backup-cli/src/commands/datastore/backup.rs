//! `kbackup stackgraph backup`: a backup now, named as the chart's CronJob names them.

use crate::cli::StackStateArgs;
use crate::commands::installation;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use anyhow::anyhow;
use backup_core::Progress;
use backup_core::cluster::JobState;
use backup_k8s::datastore::JobOutcome;
use std::time::Duration;

impl Tabular for JobOutcome {
    fn headers() -> Vec<&'static str> {
        vec!["ARCHIVE", "JOB", "STATE"]
    }
    fn cells(&self) -> Vec<String> {
        let state = super::finalize::state_text(Some(&self.job_state));
        vec![self.archive.clone(), self.job.clone(), state]
    }
}

/// Runs the backup Job and reports the archive it wrote.
pub async fn run(context: &Context, source: &StackStateArgs, timeout: Duration) -> CliResult {
    let installation = installation::load(context, &source.config).await?;
    let endpoint = source.storage.storage_endpoint.as_deref();
    let backup = installation.stackgraph_backup(endpoint, chrono::Utc::now())?;
    let progress = context.progress();
    progress.start(
        &format!("backing up StackGraph to {}", backup.archive()),
        None,
    );
    let outcome = backup.run(timeout).await;
    progress.finish();
    let outcome = outcome?;
    emit(context.output, std::slice::from_ref(&outcome))?;
    match &outcome.job_state {
        JobState::Failed(reason) => {
            super::print_logs(&outcome.logs);
            Err(CliError::user(anyhow!(
                "the backup Job {} failed: {reason}",
                outcome.job
            )))
        }
        _ => {
            context.info(&format!(
                "backup {} written by Job {}",
                outcome.archive, outcome.job
            ));
            Ok(Exit::Success)
        }
    }
}
