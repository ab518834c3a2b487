//! `kbackup stackgraph|settings|victoriametrics check-and-finalize --job NAME [--wait]`.

use crate::cli::StackStateArgs;
use crate::commands::installation;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use anyhow::anyhow;
use backup_core::cluster::{Cluster, JobState};
use backup_k8s::datastore::{FinalizeOutcome, JobOutcome, JobRestore};
use backup_usecases::restore_run::check_and_finalize;
use backup_usecases::stackstate::{DataStore, SpecOptions};
use serde::Serialize;
use std::time::Duration;

/// What became of a data store's Job, as data: a restore's once finalized, or a Job run to
/// its end (StackGraph v2's backfill).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobReport {
    job: String,
    state: String,
    scaled_up: Vec<String>,
}

impl JobReport {
    /// A restore's Job once finalized: its state and the workloads scaled back up.
    pub fn finalized(job: &str, outcome: &FinalizeOutcome) -> Self {
        Self {
            job: job.to_owned(),
            state: state_text(outcome.job_state.as_ref()),
            scaled_up: outcome.resumed.iter().map(ToString::to_string).collect(),
        }
    }

    /// A Job run to its end, which scaled nothing.
    pub fn ran(outcome: &JobOutcome) -> Self {
        Self {
            job: outcome.job.clone(),
            state: state_text(Some(&outcome.job_state)),
            scaled_up: vec![],
        }
    }
}

/// A Job's state in words (`NotFound` when there is no Job).
pub(super) fn state_text(state: Option<&JobState>) -> String {
    match state {
        None => "NotFound".to_owned(),
        Some(JobState::Running) => "Running".to_owned(),
        Some(JobState::Succeeded) => "Succeeded".to_owned(),
        Some(JobState::Failed(reason)) => format!("Failed: {reason}"),
    }
}

impl Tabular for JobReport {
    fn headers() -> Vec<&'static str> {
        vec!["JOB", "STATE", "SCALED UP"]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.job.clone(),
            self.state.clone(),
            self.scaled_up.join(", "),
        ]
    }
}

/// Finalizes a restore started by kbackup or by sts-backup.
pub async fn run(
    context: &Context,
    kind: DataStore,
    source: &StackStateArgs,
    job: &str,
    wait: Option<Duration>,
) -> CliResult {
    let installation = installation::load(context, &source.config).await?;
    let endpoint = source.storage.storage_endpoint.as_deref();
    let spec = kind.spec(&installation.config, endpoint, SpecOptions::default())?;
    let restore = JobRestore::new(&installation.cluster, &installation.namespace, spec);
    let outcome = check_and_finalize(&restore, &job.to_owned(), wait, &context.progress()).await?;
    report_outcome(context, &restore, job, &outcome)
}

/// Prints the outcome: data on stdout; logs of a failed Job and clean-up hints on stderr.
pub fn report_outcome<C: Cluster + ?Sized>(
    context: &Context,
    restore: &JobRestore<'_, C>,
    job: &str,
    outcome: &FinalizeOutcome,
) -> CliResult {
    emit(context.output, &[JobReport::finalized(job, outcome)])?;
    explain_outcome(context, restore, job, outcome)
}

/// What the outcome means, on stderr (with the logs of a failed Job), and the exit.
pub fn explain_outcome<C: Cluster + ?Sized>(
    context: &Context,
    restore: &JobRestore<'_, C>,
    job: &str,
    outcome: &FinalizeOutcome,
) -> CliResult {
    match &outcome.job_state {
        Some(JobState::Running) => {
            context.info(&format!(
                "Job {job} is still running; nothing changed. Wait for it with --wait"
            ));
            Ok(Exit::Success)
        }
        Some(JobState::Succeeded) => {
            context.info(&format!(
                "restore finished; workloads scaled back up; Job {job} and its volume removed"
            ));
            Ok(Exit::Success)
        }
        None => {
            context.info(&format!(
                "Job {job} not found; workloads with recorded replicas were scaled back up"
            ));
            Ok(Exit::Success)
        }
        Some(JobState::Failed(reason)) => {
            super::print_logs(&outcome.logs);
            eprintln!("workloads were scaled back up; if anything is left, clean up with:");
            for step in restore.cleanup_steps(job) {
                eprintln!("  {}", crate::next_step::command(&step));
            }
            Err(CliError::user(anyhow!(
                "the restore Job {job} failed: {reason}"
            )))
        }
    }
}
