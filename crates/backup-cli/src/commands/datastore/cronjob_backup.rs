//! `kbackup settings|victoriametrics backup`: a backup now, by a Job from the installation's
//! own backup CronJob, and the archives it wrote.

use crate::cli::StackStateArgs;
use crate::commands::installation;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use anyhow::anyhow;
use backup_core::Progress;
use backup_core::cluster::JobState;
use backup_usecases::stackstate::{CronJobBackupOutcome, DataStore};
use std::time::Duration;

impl Tabular for CronJobBackupOutcome {
    fn headers() -> Vec<&'static str> {
        vec!["ARCHIVES", "JOB", "STATE"]
    }
    fn cells(&self) -> Vec<String> {
        let state = super::finalize::state_text(Some(&self.job_state));
        vec![self.archives.join(","), self.job.clone(), state]
    }
}

/// Runs a Job from the CronJob (`cronjob`, or the chart's for `kind`), waits for it, and
/// reports the archives that appeared; a Job that wrote none is a failure.
pub async fn run(
    context: &Context,
    kind: DataStore,
    source: &StackStateArgs,
    cronjob: Option<&str>,
    timeout: Duration,
) -> CliResult {
    let choice = kind
        .backup_cronjob(cronjob)
        .ok_or_else(|| CliError::user(anyhow!("name the backup CronJob with --cronjob")))?;
    let installation = installation::load(context, &source.config).await?;
    let storage = context.storage_options(&source.storage).await?;
    let endpoint = source.storage.storage_endpoint.clone();
    let backup = installation
        .cronjob_backup(kind, &choice, storage, endpoint)
        .await?;
    let progress = context.progress();
    progress.start(
        &format!(
            "backing up {} with CronJob {}",
            kind.name(),
            backup.cronjob()
        ),
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
        _ if outcome.archives.is_empty() => Err(CliError::user(anyhow!(
            "the backup Job {} succeeded, but no new {} backup is listed",
            outcome.job,
            kind.name()
        ))),
        _ => {
            context.info(&format!(
                "backup {} written by Job {}",
                outcome.archives.join(", "),
                outcome.job
            ));
            Ok(Exit::Success)
        }
    }
}
