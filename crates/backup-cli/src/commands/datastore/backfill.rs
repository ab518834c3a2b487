//! `kbackup stackgraph-v2 backfill|abort`: the steps after a live restore, on the running
//! system (`stackgraph-v2 restore` runs the backfill after the live restore).

use super::finalize::JobReport;
use crate::cli::StackStateArgs;
use crate::commands::installation;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::emit;
use anyhow::anyhow;
use backup_core::Progress;
use backup_core::cluster::{Cluster, JobState};
use backup_k8s::datastore::JobOutcome;
use backup_usecases::stackstate::{BackfillStep, Installation};
use std::time::Duration;

/// Runs the backfill or the abort (after a confirmation) and reports it.
pub async fn run(
    context: &Context,
    source: &StackStateArgs,
    step: BackfillStep,
    timeout: Duration,
) -> CliResult {
    let installation = installation::load(context, &source.config).await?;
    let endpoint = source.storage.storage_endpoint.as_deref();
    let outcome = run_job(context, &installation, endpoint, step, timeout).await?;
    emit(context.output, &[JobReport::ran(&outcome)])?;
    explain(context, &installation.namespace, step, &outcome)
}

/// Runs the step's Job to its end; an abort asks first. On Ctrl-C the Job carries on, and
/// the error says how to follow it.
pub async fn run_job<C: Cluster>(
    context: &Context,
    installation: &Installation<C>,
    storage_endpoint: Option<&str>,
    step: BackfillStep,
    timeout: Duration,
) -> Result<JobOutcome, CliError> {
    let namespace = &installation.namespace;
    let prepared = installation
        .prepare_backfill_step(step, storage_endpoint)
        .await?;
    if step == BackfillStep::Abort {
        eprintln!(
            "WARNING: aborting keeps the StackGraph data loaded so far in namespace {namespace}; \
             the historic data not yet loaded stays missing."
        );
        context.confirm("Do you want to continue?")?;
    }
    let (job, noun) = (prepared.job(), noun(step));
    let (stop, progress) = (context.interrupt()?, context.progress());
    progress.start(&format!("{noun} Job {job} running"), None);
    let outcome = tokio::select! {
        outcome = prepared.run(timeout) => outcome,
        () = stop.cancelled() => {
            progress.finish();
            return Err(CliError::user(anyhow!(
                "interrupted: the {noun} Job {job} carries on. Follow it with `kubectl logs -f -n {namespace} job/{job}` \
                 and remove it once done with `kbackup -n {namespace} stackgraph-v2 check-and-finalize --job {job} --wait`"
            )));
        }
    };
    progress.finish();
    Ok(outcome?)
}

/// What the step's outcome means, on stderr (with the logs of a failed Job), and the exit.
pub fn explain(
    context: &Context,
    namespace: &str,
    step: BackfillStep,
    outcome: &JobOutcome,
) -> CliResult {
    let command = |verb: &str| format!("kbackup -n {namespace} stackgraph-v2 {verb}");
    let job = &outcome.job;
    match (&outcome.job_state, step) {
        (JobState::Failed(reason), BackfillStep::Backfill) => {
            super::print_logs(&outcome.logs);
            Err(CliError::user(anyhow!(
                "the backfill Job {job} failed: {reason}. The system runs, but not all historic data is loaded: \
                 retry with `{}`, or keep the data as it is with `{}`",
                command("backfill"),
                command("abort")
            )))
        }
        (JobState::Failed(reason), BackfillStep::Abort) => {
            super::print_logs(&outcome.logs);
            Err(CliError::user(anyhow!(
                "the abort Job {job} failed: {reason}; run `{}` again",
                command("abort")
            )))
        }
        (_, BackfillStep::Backfill) => {
            context.info("historic data loaded: the restore is complete");
            Ok(Exit::Success)
        }
        (_, BackfillStep::Abort) => {
            context.info("backfill ended: the system works with the data loaded so far");
            Ok(Exit::Success)
        }
    }
}

fn noun(step: BackfillStep) -> &'static str {
    match step {
        BackfillStep::Backfill => "backfill",
        BackfillStep::Abort => "abort",
    }
}
