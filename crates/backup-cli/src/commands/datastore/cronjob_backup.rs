//! `kbackup settings|victoriametrics backup`: a backup now, by a Job from the installation's
//! own backup CronJob, and the archives it wrote.

use crate::cli::StackStateArgs;
use crate::commands::installation;
use crate::context::Context;
use crate::exit::{CliError, CliResult};
use crate::output::Tabular;
use anyhow::anyhow;
use backup_core::Progress;
use backup_core::cluster::{ContainerLog, JobState};
use backup_usecases::stackstate::{CronJobBackupOutcome, DataStore};
use std::time::Duration;

impl super::BackupOutcome for CronJobBackupOutcome {
    fn job(&self) -> &str {
        &self.job
    }
    fn state(&self) -> &JobState {
        &self.job_state
    }
    fn logs(&self) -> &[ContainerLog] {
        &self.logs
    }
    fn written(&self) -> String {
        self.archives.join(", ")
    }
}

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
    super::backup_ended(context, &outcome, kind.name())
}
