//! `kbackup stackgraph|settings|victoriametrics restore (--archive NAME | --latest)`.

use super::Installation;
use super::finalize::report_outcome;
use super::kind::{DataStore, SpecOptions};
use crate::cli::{RestoreArgs, StackStateArgs};
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use anyhow::anyhow;
use backup_core::Progress;
use backup_k8s::datastore::{JobRestore, Operation, RestorePlan};
use std::time::Duration;

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
    let installation = Installation::load(context, &source.config).await?;
    // The Job spec validates the configuration before any listing; the archive comes next.
    let mut spec = kind.spec(&installation, source, spec_options)?;
    let archive = match (&options.archive, spec_options.from_old_pvc) {
        // The legacy volume cannot be listed from here; the Job fails if the file is absent.
        (Some(name), true) => name.clone(),
        _ => {
            let catalog = kind.catalog(&installation, context, source).await?;
            let chosen = match &options.archive {
                Some(name) => catalog.archives.find(name, &catalog.location),
                None => catalog.archives.latest(kind.name(), &catalog.location),
            };
            let archive = chosen.map_err(CliError::user)?;
            kind.prepare(&mut spec, archive);
            kind.job_archive(archive)
        }
    };
    let request = installation.job_request(archive)?;
    let namespace = installation.namespace.clone();
    let job_name = spec.job_name(Operation::Restore, &request.run_id);
    let mut restore = JobRestore::new(&installation.cluster, &namespace, spec);
    restore.pods_timeout = options.pods_timeout;

    if options.dry_run {
        let plan = restore.plan(&request).await?;
        emit(context.output, &[plan])?;
        return Ok(Exit::Success);
    }
    eprintln!(
        "WARNING: this restore {} in namespace {namespace}.",
        kind.purge_warning()
    );
    eprintln!("Backup: {} (namespace {namespace})", request.archive);
    context.confirm("Do you want to continue?")?;

    // One listener for the whole restore, registered before any change: a Ctrl-C between two
    // phases is kept for the next `recv`, never lost (a fresh `ctrl_c()` per phase would miss it).
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let finalize_hint = |job: &str| {
        format!(
            "kbackup -n {namespace} {} check-and-finalize --job {job} --wait",
            kind.name()
        )
    };
    let clock = std::time::Instant::now();
    let started = tokio::select! {
        started = restore.start(&request, chrono::Utc::now()) => started?,
        _ = interrupt.recv() => return Err(interrupted(&finalize_hint(&job_name))),
    };
    let scaled: Vec<String> = started
        .paused
        .iter()
        .map(|p| format!("{} ({})", p.workload.name, p.restore_replicas))
        .collect();
    context.info(&format!(
        "scaled down: {}",
        if scaled.is_empty() {
            "nothing".into()
        } else {
            scaled.join(", ")
        }
    ));
    context.info(&format!("restore Job {} started", started.job));
    if options.background {
        context.info(&format!(
            "follow it:  kubectl logs -f -n {namespace} job/{} --all-containers",
            started.job
        ));
        context.info(&format!("finalize:   {}", finalize_hint(&started.job)));
        context.info("the workloads stay scaled down until then");
        crate::output::write_stdout(format!("{}\n", started.job).as_bytes())?;
        return Ok(Exit::Success);
    }

    let setup = clock.elapsed();
    let progress = context.progress();
    progress.start(
        &format!("restoring {} (Job {})", request.archive, started.job),
        None,
    );
    let waited = tokio::select! {
        waited = restore.wait(&started.job, options.timeout) => waited,
        _ = interrupt.recv() => {
            progress.finish();
            return Err(interrupted(&finalize_hint(&started.job)));
        }
    };
    progress.finish();
    if let Err(error) = waited {
        return Err(CliError::from(error).context_message(&format!(
            "the restore Job {} did not finish; the workloads stay scaled down. Finalize with `{}`",
            started.job,
            finalize_hint(&started.job)
        )));
    }
    let job_done = clock.elapsed();
    let outcome = restore.finalize(&started.job, None).await?;
    let seconds = |d: Duration| d.as_secs_f64();
    context.info(&format!(
        "timings: scale-down and setup {:.2}s, job {:.2}s, scale-up and clean-up {:.2}s",
        seconds(setup),
        seconds(job_done - setup),
        seconds(clock.elapsed() - job_done)
    ));
    report_outcome(context, &restore, &started.job, &outcome)
}

fn interrupted(finalize: &str) -> CliError {
    CliError::user(anyhow!(
        "interrupted: the original replica counts are kept in the workloads' annotations. \
         Finish the restore with `{finalize}`"
    ))
}
