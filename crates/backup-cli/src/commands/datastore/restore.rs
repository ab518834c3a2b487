//! `kbackup stackgraph|settings|victoriametrics restore (--archive NAME | --latest)`.

use super::backfill;
use super::finalize::{JobReport, explain_outcome, report_outcome};
use crate::cli::{LatestByArg, RestoreArgs, StackStateArgs};
use crate::commands::installation;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use anyhow::anyhow;
use backup_core::cluster::JobState;
use backup_core::engine::RestoreEngine;
use backup_core::model::NextStep;
use backup_core::stackstate::LatestBy;
use backup_core::workflow::WorkflowError;
use backup_k8s::datastore::{JobRestore, RestorePlan, StartedRestore};
use backup_usecases::restore_run::{RestoreRunError, run_restore, start_restore};
use backup_usecases::stackstate::{ArchiveChoice, BackfillStep, DataStore, SpecOptions};

impl RestoreArgs {
    /// The archive asked for: by name, or the latest as --latest-by says.
    fn choice(&self) -> ArchiveChoice<'_> {
        match (&self.archive, self.latest_by) {
            (Some(name), _) => ArchiveChoice::Named(name),
            (None, LatestByArg::Name) => ArchiveChoice::Latest(LatestBy::Name),
            (None, LatestByArg::Modified) => ArchiveChoice::Latest(LatestBy::Modified),
        }
    }
}

impl Tabular for RestorePlan {
    fn headers() -> Vec<&'static str> {
        vec!["ARCHIVE", "SCALE DOWN", "CREATE", "REFUSED"]
    }
    fn cells(&self) -> Vec<String> {
        let scale = crate::output::scale_down_cell(&self.scale_down);
        vec![
            self.archive.clone(),
            scale,
            self.create.join(", "),
            self.refused.clone().unwrap_or_else(|| "-".into()),
        ]
    }
}

/// Restores an archive, in the foreground or in the background.
pub async fn run(
    context: &Context,
    kind: DataStore,
    source: &StackStateArgs,
    options: &RestoreArgs,
    spec_options: SpecOptions,
) -> CliResult {
    let installation = installation::load(context, &source.config).await?;
    let storage = context.storage_options(&source.storage).await?;
    let prepared = installation
        .prepare_restore(
            kind,
            options.choice(),
            spec_options,
            storage,
            source.storage.storage_endpoint.clone(),
        )
        .await?;
    let (request, namespace) = (prepared.request, &installation.namespace);
    let mut restore = JobRestore::new(&installation.cluster, namespace, prepared.spec);
    restore.pods_timeout = options.pods_timeout;
    let plan = restore.plan(&request).await?;
    if options.dry_run {
        emit(context.output, &[plan])?;
        return Ok(Exit::Success);
    }
    eprintln!(
        "WARNING: this restore {} in namespace {namespace}.",
        kind.purge_warning()
    );
    eprintln!("Backup: {} (namespace {namespace})", request.archive);
    context.confirm("Do you want to continue?")?;

    let finalize_hint = |job: &str| {
        crate::next_step::command(&NextStep::FinalizeRestore {
            namespace: namespace.clone(),
            data_store: kind.name().into(),
            operation: Some(job.into()),
        }) + " --wait"
    };
    let (stop, progress) = (context.interrupt()?, context.progress());
    if options.background {
        let started = start_restore(&restore, &plan, &progress, &stop)
            .await
            .map_err(|e| run_error(e, &finalize_hint))?;
        started_in_background(context, &started, namespace, &finalize_hint(&started.job))?;
        if kind == DataStore::StackGraphV2 {
            context.info(&format!(
                "then load the historic data: kbackup -n {namespace} stackgraph-v2 backfill"
            ));
        }
        return Ok(Exit::Success);
    }
    let shown = |started: &StartedRestore| show_started(context, started);
    let finished = run_restore(&restore, &plan, options.timeout, &progress, &stop, shown)
        .await
        .map_err(|e| run_error(e, &finalize_hint))?;
    let t = finished.timings;
    context.info(&format!(
        "timings: scale-down and setup {:.2}s, job {:.2}s, scale-up and clean-up {:.2}s",
        t.start.as_secs_f64(),
        t.work.as_secs_f64(),
        t.finalize.as_secs_f64()
    ));
    let (job, outcome) = (&finished.started.job, &finished.outcome);
    if kind != DataStore::StackGraphV2 || outcome.job_state != Some(JobState::Succeeded) {
        return report_outcome(context, &restore, job, outcome);
    }
    // StackGraph v2: the live data is back; the historic data follows while the system runs.
    explain_outcome(context, &restore, job, outcome)?;
    context.info(
        "the system is back up; loading the historic data while it runs (not all of it is there until the backfill ends)",
    );
    let endpoint = source.storage.storage_endpoint.as_deref();
    let step = BackfillStep::Backfill;
    let backfill =
        backfill::run_job(context, &installation, endpoint, step, options.timeout).await?;
    emit(
        context.output,
        &[
            JobReport::finalized(job, outcome),
            JobReport::ran(&backfill),
        ],
    )?;
    backfill::explain(context, namespace, step, &backfill)
}

/// A restore left running: how to follow and finish it; its Job's name on stdout.
fn started_in_background(
    context: &Context,
    started: &StartedRestore,
    namespace: &str,
    finalize: &str,
) -> CliResult {
    show_started(context, started);
    context.info(&format!(
        "follow it:  kubectl logs -f -n {namespace} job/{} --all-containers",
        started.job
    ));
    context.info(&format!("finalize:   {finalize}"));
    context.info("the workloads stay scaled down until then");
    crate::output::write_stdout(format!("{}\n", started.job).as_bytes())?;
    Ok(Exit::Success)
}

/// What the start did, on stderr.
fn show_started(context: &Context, started: &StartedRestore) {
    let scaled: Vec<String> = started.paused.iter().map(ToString::to_string).collect();
    let scaled = match scaled.is_empty() {
        true => "nothing".into(),
        false => scaled.join(", "),
    };
    context.info(&format!("scaled down: {scaled}"));
    context.info(&format!("restore Job {} started", started.job));
}

/// The words of a restore that stopped short, with the finalize that completes it.
fn run_error(
    error: RestoreRunError<String, WorkflowError>,
    finalize_hint: &dyn Fn(&str) -> String,
) -> CliError {
    match error {
        RestoreRunError::Interrupted { operation } => interrupted(&finalize_hint(&operation)),
        RestoreRunError::Unfinished { operation, error } => {
            CliError::from(error).context_message(&format!(
                "the restore Job {operation} did not finish; the workloads stay scaled down. Finalize with `{}`",
                finalize_hint(&operation)
            ))
        }
        RestoreRunError::Failed(error) => error.into(),
    }
}

fn interrupted(finalize: &str) -> CliError {
    CliError::user(anyhow!(
        "interrupted: the original replica counts are kept in the workloads' annotations. \
         Finish the restore with `{finalize}`"
    ))
}
