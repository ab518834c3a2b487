//! `kbackup elasticsearch restore` and `check-and-finalize --operation-id SNAPSHOT`.

use super::EsSession;
use crate::cli::EsArgs;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use anyhow::anyhow;
use backup_core::RestoreEngine;
use backup_elasticsearch::{
    EsOperation, EsRestore, EsRestorePlan, IndexCount, Rename, RestoreError, RestoreRequest,
    SnapshotInfo, SnapshotRestore, StartedEsRestore, check_restorable,
};
use backup_k8s::KubeCluster;
use backup_usecases::restore_run::{
    RestoreRunError, check_and_finalize, run_restore, start_restore,
};
use serde::Serialize;
use std::time::Duration;

/// What the user asked for (`snapshot: None` is `--latest`).
pub struct Options {
    pub snapshot: Option<String>,
    pub background: bool,
    pub allow_partial: bool,
    pub indices: Option<String>,
    pub rename: Option<(String, String)>,
    pub dry_run: bool,
    pub timeout: Duration,
    pub pods_timeout: Duration,
}

impl Tabular for EsRestorePlan {
    fn headers() -> Vec<&'static str> {
        vec![
            "SNAPSHOT",
            "STATE",
            "RESTORE",
            "DELETE",
            "ROLLOVER",
            "SCALE DOWN",
            "REFUSED",
        ]
    }
    fn cells(&self) -> Vec<String> {
        let scale = crate::output::scale_down_cell(&self.scale_down);
        vec![
            self.snapshot.clone(),
            self.state.clone(),
            self.restore.join(", "),
            self.delete.join(", "),
            self.rollover.clone().unwrap_or_else(|| "-".into()),
            scale,
            self.refused.clone().unwrap_or_else(|| "-".into()),
        ]
    }
}

impl Tabular for IndexCount {
    fn headers() -> Vec<&'static str> {
        vec![
            "INDEX",
            "DOCUMENTS IN SNAPSHOT",
            "DOCUMENTS RESTORED",
            "CHECK",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.index.clone(),
            self.expected
                .map(|n| n.to_string())
                .unwrap_or_else(|| "not recorded".into()),
            self.restored.to_string(),
            check(self).into(),
        ]
    }
}

fn check(count: &IndexCount) -> &'static str {
    match count.expected {
        None => "-",
        Some(n) if n == count.restored => "ok",
        Some(_) => "MISMATCH",
    }
}

/// Restores a snapshot.
pub async fn run(context: &Context, source: &EsArgs, options: Options) -> CliResult {
    let session = EsSession::open(context, source).await?;
    let (repository, settings) = session.installation.elasticsearch_restore()?;
    let snapshot = session
        .connection
        .snapshot_or_latest(&repository, options.snapshot.as_deref())
        .await?;
    let mut request = RestoreRequest {
        indices: (options.indices.clone()).unwrap_or_else(|| settings.indices_pattern.clone()),
        allow_partial: options.allow_partial,
        rename: options.rename.clone().map(|(pattern, replacement)| Rename {
            pattern,
            replacement,
        }),
    };
    let installation = &session.installation;
    let (cluster, namespace) = (&installation.cluster, &installation.namespace);
    let mut restore = EsRestore::new(session.client(), cluster, namespace, &repository, settings);
    restore.pods_timeout = options.pods_timeout;
    if !options.dry_run {
        request.allow_partial = allow_partial(context, &snapshot, request.allow_partial)?;
    }
    let source = SnapshotRestore {
        snapshot: snapshot.clone(),
        request: request.clone(),
    };
    let plan = restore.plan(&source).await?;
    if options.dry_run {
        emit(context.output, &[plan])?;
        return Ok(Exit::Success);
    }
    confirm(context, &plan, &source, namespace)?;
    let finalize = crate::next_step::command(&restore.finalize_step(&snapshot.name));
    let stopped = |error| stopped(error, &finalize);
    let (stop, progress) = (context.interrupt()?, context.progress());
    let shown = |started: &StartedEsRestore| show_started(context, started);
    if options.background {
        let started = start_restore(&restore, &plan, &progress, &stop)
            .await
            .map_err(stopped)?;
        shown(&started);
        context.info(&format!("finalize:   {finalize}"));
        crate::output::write_stdout(format!("{}\n", snapshot.name).as_bytes())?;
        return Ok(Exit::Success);
    }
    let finished = run_restore(&restore, &plan, options.timeout, &progress, &stop, shown)
        .await
        .map_err(stopped)?;
    let (outcome, timings) = (&finished.outcome, finished.timings);
    if outcome.recovering_shards > 0 {
        return Err(CliError::user(anyhow!(
            "{} shard(s) still recover; the workloads stay scaled down: finish with `{finalize}`",
            outcome.recovering_shards
        )));
    }
    let took = (timings.start + timings.work).as_secs_f64();
    let scaled = outcome.resumed.len();
    context.info(&format!(
        "restore done in {took:.2}s; scaled up {scaled} workload(s)"
    ));
    compare_counts(context, &restore, &source).await
}

/// The words of a restore that stopped short.
fn stopped(error: RestoreRunError<EsOperation, RestoreError>, finalize: &str) -> CliError {
    match error {
        RestoreRunError::Interrupted { .. } => CliError::user(anyhow!(
            "interrupted: the restore goes on in Elasticsearch; finish it with `{finalize}`"
        )),
        RestoreRunError::Unfinished { error, .. } | RestoreRunError::Failed(error) => {
            CliError::from(error)
        }
    }
}

/// Whether a PARTIAL snapshot may be restored: asked (its failed shards come back empty),
/// unless `--allow-partial` said so; `-y` answers the purge question, not this one.
fn allow_partial(
    context: &Context,
    snapshot: &SnapshotInfo,
    allowed: bool,
) -> Result<bool, CliError> {
    if snapshot.state == "PARTIAL" && !allowed {
        eprintln!(
            "Snapshot {} is PARTIAL: {} of {} shards failed; they come back empty.",
            snapshot.name, snapshot.shards_failed, snapshot.shards_total
        );
        if !context.ask("Restore it anyway?")? {
            check_restorable(snapshot, false)?;
        }
        return Ok(true);
    }
    check_restorable(snapshot, allowed)?;
    Ok(allowed)
}

/// Refuses what the plan refuses, says what the restore deletes, and asks.
fn confirm(
    context: &Context,
    plan: &EsRestorePlan,
    source: &SnapshotRestore,
    namespace: &str,
) -> Result<(), CliError> {
    if let Some(refused) = &plan.refused {
        return Err(CliError::user(anyhow!("{refused}")));
    }
    if source.request.rename.is_none() {
        eprintln!(
            "WARNING: this restore DELETES {} live index(es) matching '{}' in Elasticsearch and scales down {} workload(s) in namespace {namespace}.",
            plan.delete.len(),
            source.request.indices,
            plan.scale_down.len()
        );
    } else {
        eprintln!(
            "Restoring {} index(es) under new names next to the live ones; nothing is deleted.",
            plan.restore.len()
        );
    }
    let snapshot = &source.snapshot;
    eprintln!("Snapshot: {} ({})", snapshot.name, snapshot.state);
    context.confirm("Do you want to continue?")
}

/// What the start did, on stderr.
fn show_started(context: &Context, started: &StartedEsRestore) {
    if let Some(datastream) = &started.rolled_over {
        context.info(&format!("rolled over datastream {datastream}"));
    }
    context.info(&format!(
        "deleted {} index(es); scaled down {} workload(s); restore of {} index(es) started",
        started.deleted.len(),
        started.paused.len(),
        started.targets.len()
    ));
}

/// The restored document counts against the snapshot's record; a mismatch is a partial
/// failure.
async fn compare_counts(
    context: &Context,
    restore: &EsRestore<'_, KubeCluster>,
    source: &SnapshotRestore,
) -> CliResult {
    let counts = restore
        .compare_counts(&source.snapshot, &source.request)
        .await?;
    emit(context.output, &counts)?;
    let mismatched: Vec<&str> = counts
        .iter()
        .filter(|c| check(c) == "MISMATCH")
        .map(|c| c.index.as_str())
        .collect();
    if mismatched.is_empty() {
        Ok(Exit::Success)
    } else {
        Err(CliError {
            exit: Exit::Partial,
            error: anyhow!(
                "restored document counts differ from the snapshot's record for {}",
                mismatched.join(", ")
            ),
        })
    }
}

/// The outcome of check-and-finalize as data.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FinalizeReport {
    snapshot: String,
    state: String,
    recovering_shards: usize,
    scaled_up: Vec<String>,
}

impl Tabular for FinalizeReport {
    fn headers() -> Vec<&'static str> {
        vec!["SNAPSHOT", "STATE", "RECOVERING SHARDS", "SCALED UP"]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.snapshot.clone(),
            self.state.clone(),
            self.recovering_shards.to_string(),
            self.scaled_up.join(", "),
        ]
    }
}

/// Finishes a restore started in the background (by kbackup or sts-backup).
pub async fn finalize(
    context: &Context,
    source: &EsArgs,
    snapshot: &str,
    wait: Option<Duration>,
) -> CliResult {
    let session = EsSession::open(context, source).await?;
    let (repository, settings) = session.installation.elasticsearch_restore()?;
    let restore = EsRestore::new(
        session.client(),
        &session.installation.cluster,
        &session.installation.namespace,
        &repository,
        settings,
    );
    let operation = EsOperation {
        snapshot: snapshot.to_owned(),
        targets: vec![],
    };
    let outcome = check_and_finalize(&restore, &operation, wait, &context.progress()).await?;
    let done = outcome.recovering_shards == 0;
    emit(
        context.output,
        &[FinalizeReport {
            snapshot: snapshot.to_owned(),
            state: if done { "Done" } else { "Running" }.into(),
            recovering_shards: outcome.recovering_shards,
            scaled_up: outcome.resumed.iter().map(ToString::to_string).collect(),
        }],
    )?;
    if !done {
        context.info(&format!(
            "{} shard(s) still recovering; nothing changed. Wait with --wait",
            outcome.recovering_shards
        ));
    }
    Ok(Exit::Success)
}
