//! `kbackup backup volumes`.

use super::mover_settings;
use crate::cli::VolumeBackupArgs;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use crate::repository::open;
use anyhow::anyhow;
use backup_core::Phase;
use backup_k8s::KubeCluster;
use backup_usecases::volumes::backup::{
    VolumeBackupRequest, VolumeOptions, VolumeReport, back_up_volumes,
};
use backup_usecases::volumes::discovery::SkippedVolume;
use backup_usecases::volumes::discovery::VolumeSelection;
use backup_usecases::volumes::hooks::BackupHooks;
use backup_usecases::volumes::hooks::HookRun;
use backup_usecases::volumes::target::WorkloadRef;
use indicatif::HumanBytes;
use serde::Serialize;
use std::path::Path;

/// One volume, as reported (seed 004's `status.components` entry and the mover's counts).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VolumeRow {
    component: String,
    claim: String,
    node: String,
    phase: Phase,
    duration_seconds: f64,
    files: u64,
    bytes: u64,
    files_unchanged: u64,
    added_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Tabular for VolumeRow {
    fn headers() -> Vec<&'static str> {
        vec![
            "COMPONENT",
            "CLAIM",
            "NODE",
            "PHASE",
            "DURATION",
            "FILES",
            "SIZE",
            "UNCHANGED",
            "ADDED",
            "ERROR",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.component.clone(),
            self.claim.clone(),
            self.node.clone(),
            format!("{:?}", self.phase),
            format!("{:.1}s", self.duration_seconds),
            self.files.to_string(),
            HumanBytes(self.bytes).to_string(),
            self.files_unchanged.to_string(),
            HumanBytes(self.added_bytes).to_string(),
            self.error.clone().unwrap_or_default(),
        ]
    }
}

/// Finds the volumes, runs a mover for each, commits one snapshot, and reports each volume.
pub async fn backup(context: &Context, args: VolumeBackupArgs) -> CliResult {
    let workloads = args
        .workload
        .iter()
        .map(|w| WorkloadRef::parse(w).map_err(|e| CliError::user(anyhow!("--workload {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let hooks = hooks_file(args.hooks.as_deref())?;
    let mover = mover_settings(context, &args.repo, &args.mover).await?;
    let repository = open(context, &args.repo).await?;
    let cluster = KubeCluster::connect(&context.kube).await?;
    let request = VolumeBackupRequest {
        selection: VolumeSelection {
            namespace: context.namespace_in(&cluster),
            workloads,
            selector: args.selector,
            include_volumes: args.include_volumes,
            exclude_volumes: args.exclude_volumes,
        },
        options: VolumeOptions {
            mover,
            hooks,
            force: args.force,
            quiesce: args.quiesce.into(),
        },
        marks: args.marks.into(),
    };
    let done = back_up_volumes(&cluster, &repository, &request, &context.progress()).await?;
    report_moved(context, &done.skipped, &done.hooks, &done.volumes);
    match &done.id {
        Some(id) => context.info(&format!(
            "snapshot {} saved in {:.1}s ({:?}): {} volumes, {} added",
            id.short(),
            done.duration.as_secs_f64(),
            done.phase,
            done.volumes.len(),
            HumanBytes(done.added_bytes)
        )),
        None => context.info("no snapshot saved: every volume failed"),
    }
    let rows: Vec<VolumeRow> = done.volumes.into_iter().map(VolumeRow::from).collect();
    emit(context.output, &rows)?;
    match done.phase {
        Phase::Succeeded => Ok(Exit::Success),
        Phase::Failed => Err(CliError::user(anyhow!("no volume was backed up"))),
        _ => Ok(Exit::Partial),
    }
}

impl From<VolumeReport> for VolumeRow {
    fn from(v: VolumeReport) -> Self {
        Self {
            component: v.component,
            claim: v.claim,
            node: v.node,
            phase: v.phase,
            duration_seconds: v.duration.as_secs_f64(),
            files: v.files,
            bytes: v.bytes,
            files_unchanged: v.files_unchanged,
            added_bytes: v.added_bytes,
            error: v.error,
        }
    }
}

/// The hooks of `--hooks FILE` (none without it).
pub(crate) fn hooks_file(path: Option<&Path>) -> Result<BackupHooks, CliError> {
    let Some(path) = path else {
        return Ok(BackupHooks::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::user(anyhow!("--hooks {}: {e}", path.display())))?;
    BackupHooks::parse(&text)
        .map_err(|e| CliError::user(anyhow!("--hooks {}: {e}", path.display())))
}

/// Says on stderr which volumes were skipped and why, how each hook went, and the end of
/// the log of each mover that failed.
pub(crate) fn report_moved(
    context: &Context,
    skipped: &[SkippedVolume],
    hooks: &[HookRun],
    volumes: &[VolumeReport],
) {
    for skipped in skipped {
        context.info(&format!(
            "skipped {} claim {}: {}",
            skipped.workload, skipped.claim, skipped.reason
        ));
    }
    for hook in hooks {
        let outcome = match (hook.skipped, hook.succeeded) {
            (true, _) => "skipped by its execution policy".to_owned(),
            (false, true) => format!("succeeded ({} attempts)", hook.attempts),
            (false, false) => format!(
                "FAILED after {} attempts: {}",
                hook.attempts,
                hook.error.as_deref().unwrap_or("no reason given")
            ),
        };
        context.info(&format!(
            "{:?} hook '{}' in pod {}: {outcome}",
            hook.stage, hook.name, hook.pod
        ));
    }
    for failed in volumes.iter().filter(|v| v.phase != Phase::Succeeded) {
        context.info(&format!(
            "{} {:?}: {}",
            failed.component,
            failed.phase,
            failed.error.as_deref().unwrap_or("no reason given")
        ));
    }
    for failed in volumes.iter().filter(|v| !v.log_tail.is_empty()) {
        context.info(&format!(
            "{} failed; the end of its mover's log:\n  {}",
            failed.component,
            failed.log_tail.join("\n  ")
        ));
    }
}
