//! `kbackup stackgraph backup`: a backup now, named as the chart's CronJob names them.

use crate::cli::StackStateArgs;
use crate::commands::installation;
use crate::context::Context;
use crate::exit::CliResult;
use crate::output::Tabular;
use backup_core::Progress;
use backup_core::cluster::{ContainerLog, JobState};
use backup_k8s::datastore::JobOutcome;
use std::time::Duration;

impl super::BackupOutcome for JobOutcome {
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
        self.archive.clone()
    }
}

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
    super::backup_ended(context, &outcome, "stackgraph")
}
