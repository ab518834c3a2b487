//! `kbackup restore cluster ID|latest`.

use crate::cli::{ClusterRestoreArgs, ExistingArg};
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{OutputFormat, Tabular, emit, emit_each};
use crate::repository::{find_snapshot, open};
use anyhow::anyhow;
use backup_core::model::{NextStep, Phase, PlannedAction};
use backup_core::resources::NamespaceMapping;
use backup_core::{ClusterError, RestoreEngine};
use backup_k8s::KubeCluster;
use backup_k8s::cluster_resources::{
    ExistingPolicy, KindCounts, PlanCounts, PlannedObject, RestoreOptions, RestoreOutcome,
};
use backup_usecases::cluster::{MANIFESTS, ManifestRestore, RestoreSessionStatus};
use chrono::SecondsFormat;
use serde::Serialize;

impl Tabular for PlannedObject {
    fn headers() -> Vec<&'static str> {
        vec!["WAVE", "ACTION", "OBJECT", "REASON"]
    }
    fn cells(&self) -> Vec<String> {
        let action = match (self.action, self.conflict, self.differs) {
            (_, true, _) => "conflict".to_owned(),
            (PlannedAction::Update, ..) => "differs: update".to_owned(),
            (PlannedAction::Skip, _, true) => "differs: skip".to_owned(),
            (action, ..) => format!("{action:?}").to_lowercase(),
        };
        // The library says what the policy did; the flag that changes it is the CLI's word.
        let flag = match (self.conflict, self.differs) {
            (true, true) => " (--existing fail)".to_owned(),
            (false, true) if self.action == PlannedAction::Skip => format!(
                " ({} replaces it)",
                crate::next_step::command(&NextStep::UpdateExisting)
            ),
            _ => String::new(),
        };
        vec![
            self.wave.to_string(),
            action,
            self.object.clone(),
            format!("{}{flag}", self.reason),
        ]
    }
}

/// One kind's outcome, for the table.
#[derive(Serialize)]
struct KindRow {
    kind: String,
    #[serde(flatten)]
    counts: KindCounts,
}

impl Tabular for KindRow {
    fn headers() -> Vec<&'static str> {
        vec![
            "KIND",
            "CREATED",
            "UPDATED",
            "UNCHANGED",
            "SKIPPED",
            "FAILED",
        ]
    }
    fn cells(&self) -> Vec<String> {
        let c = &self.counts;
        vec![
            self.kind.clone(),
            c.created.to_string(),
            c.updated.to_string(),
            c.unchanged.to_string(),
            c.skipped.to_string(),
            c.failed.to_string(),
        ]
    }
}

/// The plan's outcomes that occur, by name (objects that exist and differ are counted as
/// such, not among those left on purpose).
pub(super) fn outcomes(counts: &PlanCounts) -> String {
    [
        ("conflict", counts.conflict),
        ("create", counts.create),
        ("differ", counts.differ),
        ("skip", counts.skip),
        ("unchanged", counts.unchanged),
        ("update", counts.update),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(outcome, n)| format!("{n} {outcome}"))
    .collect::<Vec<_>>()
    .join(", ")
}

/// Plans, and unless a dry run, restores.
pub async fn restore(context: &Context, args: ClusterRestoreArgs) -> CliResult {
    let options = restore_options(&args)?;
    let repository = open(context, &args.repo).await?;
    let snapshots = repository.snapshots().await?;
    let file = find_snapshot(&snapshots, &args.snapshot, &args.among, &args.repo.repo)?;
    let cluster = KubeCluster::connect(&context.kube).await?;
    if args.include_volumes {
        return super::application::restore(context, &args, options, &repository, file, &cluster)
            .await;
    }
    let engine = ManifestRestore::new(&repository, file, &cluster);
    let planned = engine.plan(&options).await?;
    let counts = planned.counts();
    let summary = format!(
        "plan for snapshot {}: {} objects in {} waves: {}",
        file.snapshot.id.short(),
        planned.len(),
        planned.waves(),
        outcomes(&counts)
    );
    if !show_plan(context, args.dry_run, &summary, &counts, || {
        planned.objects()
    })? {
        return Ok(Exit::Success);
    }
    let progress = context.progress();
    let outcome = engine
        .start(&planned, chrono::Utc::now(), &progress)
        .await?;
    render(context, &outcome, planned.len(), planned.waves())?;
    if let Some(left) = left_differing(args.existing, &counts) {
        eprintln!("{left}");
    }
    verdict(context, &outcome)
}

/// Shows a plan: with `dry_run` its objects on stdout and the summary (then `false`: stop);
/// else the summary, and a confirmation before objects that differ are updated.
pub(super) fn show_plan<I>(
    context: &Context,
    dry_run: bool,
    summary: &str,
    counts: &PlanCounts,
    objects: impl Fn() -> I,
) -> Result<bool, CliError>
where
    I: Iterator<Item = Result<PlannedObject, ClusterError>>,
{
    if dry_run {
        emit_each(context.output, || {
            objects().map(|o| o.map_err(CliError::from))
        })?;
        context.info(&format!("{summary} (--dry-run: nothing changed)"));
        return Ok(false);
    }
    context.info(summary);
    if counts.update > 0 {
        context.confirm(&format!(
            "Update {} existing object(s) that differ from the snapshot?",
            counts.update
        ))?;
    }
    Ok(true)
}

/// The restore options the flags ask for.
fn restore_options(args: &ClusterRestoreArgs) -> Result<RestoreOptions, CliError> {
    let mapping =
        NamespaceMapping::parse(&args.namespace_mapping).map_err(|e| CliError::user(anyhow!(e)))?;
    let components = &args.components;
    if !components.is_empty() && !components.iter().any(|c| c == MANIFESTS) {
        return Err(CliError::user(anyhow!(
            "--components {}: a cluster snapshot has the component `{MANIFESTS}` only",
            components.join(",")
        )));
    }
    Ok(RestoreOptions {
        mapping,
        filter: args.filter.clone().into(),
        existing: match args.existing {
            ExistingArg::Skip => ExistingPolicy::Skip,
            ExistingArg::Update => ExistingPolicy::Update,
            ExistingArg::Fail => ExistingPolicy::Fail,
        },
        restore_status: args.restore_status,
        preserve_node_ports: args.preserve_nodeports,
        concurrency: args.workers,
        ..RestoreOptions::default()
    })
}

/// The outcome on stdout: counts per kind as a table, else the RestoreSession-shaped
/// status; every warning and error on stderr.
pub(super) fn render(
    context: &Context,
    outcome: &RestoreOutcome,
    objects: usize,
    waves: usize,
) -> Result<(), CliError> {
    match context.output {
        OutputFormat::Table => {
            let rows: Vec<KindRow> = outcome
                .kinds
                .iter()
                .map(|(kind, counts)| KindRow {
                    kind: kind.clone(),
                    counts: *counts,
                })
                .collect();
            emit(context.output, &rows)?;
        }
        _ => {
            let now = chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
            let status = RestoreSessionStatus::of(outcome, objects, waves, &now);
            let text = match context.output {
                OutputFormat::Yaml => {
                    serde_saphyr::to_string(&status).map_err(|e| CliError::user(anyhow!(e)))?
                }
                _ => {
                    serde_json::to_string_pretty(&status).map_err(|e| CliError::user(anyhow!(e)))?
                        + "\n"
                }
            };
            crate::output::write_stdout(text.as_bytes())?;
        }
    }
    for issue in &outcome.report.issues {
        eprintln!("{:?}: {}: {}", issue.severity, issue.item, issue.message);
    }
    Ok(())
}

/// What the existing-object policy left differing, and the flag that replaces it.
pub(super) fn left_differing(existing: ExistingArg, counts: &PlanCounts) -> Option<String> {
    let update = existing_hint();
    match existing {
        ExistingArg::Fail if counts.refused_differing > 0 => Some(format!(
            "objects that exist and differ were refused (--existing fail); {update}"
        )),
        ExistingArg::Skip if counts.differ > 0 => Some(format!(
            "{} object(s) that exist and differ were left as they are; {update}",
            counts.differ
        )),
        _ => None,
    }
}

/// `--existing update replaces them`: how to replace objects that exist and differ.
fn existing_hint() -> String {
    format!(
        "{} replaces them",
        crate::next_step::command(&NextStep::UpdateExisting)
    )
}

/// The totals on stderr, and the exit: partial when some objects failed.
pub(super) fn verdict(context: &Context, outcome: &RestoreOutcome) -> CliResult {
    let totals = outcome.totals();
    context.info(&format!(
        "restore {:?} in {:.2}s: {} created, {} updated, {} unchanged, {} skipped, {} failed",
        outcome.report.phase(),
        outcome.duration.as_secs_f64(),
        totals.created,
        totals.updated,
        totals.unchanged,
        totals.skipped,
        totals.failed
    ));
    match outcome.report.phase() {
        Phase::Succeeded => Ok(Exit::Success),
        Phase::PartiallyFailed => Err(CliError {
            exit: Exit::Partial,
            error: anyhow!(
                "{} object(s) failed; the others were restored",
                totals.failed
            ),
        }),
        _ => Err(CliError::user(anyhow!(
            "the restore failed: {} object(s) failed",
            totals.failed
        ))),
    }
}
