//! `kbackup restore volumes ID:COMPONENT --claim [NAMESPACE/]NAME` and
//! `kbackup restore volumes ID --target KIND/NAME [--components ...]`.

use super::mover_settings;
use crate::cli::VolumeRestoreArgs;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use crate::repository::open;
use anyhow::anyhow;
use backup_core::Phase;
use backup_k8s::KubeCluster;
use backup_usecases::volumes::restore::{ClaimRestoreRequest, restore_into_claim};
use backup_usecases::volumes::target::WorkloadRef;
use backup_usecases::volumes::workload_restore::{WorkloadRestoreRequest, restore_into_workload};
use indicatif::HumanBytes;
use serde::Serialize;

/// The restored component, as reported.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RestoredRow {
    snapshot: String,
    component: String,
    claim: String,
    phase: Phase,
    duration_seconds: f64,
    files: u64,
    dirs: u64,
    bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Tabular for RestoredRow {
    fn headers() -> Vec<&'static str> {
        vec![
            "SNAPSHOT",
            "COMPONENT",
            "CLAIM",
            "PHASE",
            "DURATION",
            "FILES",
            "DIRS",
            "SIZE",
            "ERROR",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.snapshot.clone(),
            self.component.clone(),
            self.claim.clone(),
            format!("{:?}", self.phase),
            format!("{:.1}s", self.duration_seconds),
            self.files.to_string(),
            self.dirs.to_string(),
            HumanBytes(self.bytes).to_string(),
            self.error.clone().unwrap_or_default(),
        ]
    }
}

/// Restores one volume component into a claim through a mover pod, or a workload's
/// components into it through an init container.
pub async fn restore(context: &Context, args: VolumeRestoreArgs) -> CliResult {
    if let Some(target) = &args.target {
        return into_workload(context, &args, target).await;
    }
    let Some(claim) = &args.claim else {
        return Err(CliError::user(anyhow!("give --claim or --target")));
    };
    let (snapshot, component) = args.snapshot.split_once(':').ok_or_else(|| {
        CliError::user(anyhow!(
            "'{}' is not ID:COMPONENT (or latest:COMPONENT)",
            args.snapshot
        ))
    })?;
    let mut mover = mover_settings(context, &args.repo, &args.mover).await?;
    mover.verify = args.verify;
    let repository = open(context, &args.repo).await?;
    let cluster = KubeCluster::connect(&context.kube).await?;
    let (claim_namespace, claim) = match claim.split_once('/') {
        Some((ns, name)) => (ns.to_owned(), name.to_owned()),
        None => (context.namespace_in(&cluster), claim.clone()),
    };
    let request = ClaimRestoreRequest {
        snapshot: snapshot.to_owned(),
        among: (&args.among).into(),
        component: component.to_owned(),
        namespace: claim_namespace,
        claim,
        overwrite: args.overwrite,
        mover,
    };
    let done = restore_into_claim(&cluster, &repository, &request).await?;
    if !done.log_tail.is_empty() {
        context.info(&format!(
            "the mover failed; the end of its log:\n  {}",
            done.log_tail.join("\n  ")
        ));
    }
    for warning in &done.written.warnings {
        context.info(&format!("warning: {warning}"));
    }
    let phase = done.phase;
    let row = RestoredRow {
        snapshot: done.snapshot.short().to_owned(),
        component: done.component,
        claim: done.claim,
        phase,
        duration_seconds: done.duration.as_secs_f64(),
        files: done.written.files,
        dirs: done.written.dirs,
        bytes: done.written.bytes,
        error: done.error,
    };
    emit(context.output, &[row])?;
    match phase {
        Phase::Succeeded => Ok(Exit::Success),
        Phase::PartiallyFailed => Ok(Exit::Partial),
        _ => Err(CliError::user(anyhow!("the volume was not restored"))),
    }
}

/// One component restored into a workload, as reported.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ComponentRow {
    component: String,
    pod: String,
    phase: Phase,
    duration_seconds: f64,
    files: u64,
    bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Tabular for ComponentRow {
    fn headers() -> Vec<&'static str> {
        vec![
            "COMPONENT",
            "POD",
            "PHASE",
            "DURATION",
            "FILES",
            "SIZE",
            "ERROR",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.component.clone(),
            self.pod.clone(),
            format!("{:?}", self.phase),
            format!("{:.1}s", self.duration_seconds),
            self.files.to_string(),
            HumanBytes(self.bytes).to_string(),
            self.error.clone().unwrap_or_default(),
        ]
    }
}

/// `restore volumes ID --target KIND/NAME [--components ...]`.
async fn into_workload(context: &Context, args: &VolumeRestoreArgs, target: &str) -> CliResult {
    let target = WorkloadRef::parse(target).map_err(|e| CliError::user(anyhow!("--target {e}")))?;
    let mover = mover_settings(context, &args.repo, &args.mover).await?;
    let repository = open(context, &args.repo).await?;
    let cluster = KubeCluster::connect(&context.kube).await?;
    let request = WorkloadRestoreRequest {
        snapshot: args.snapshot.clone(),
        among: (&args.among).into(),
        namespace: context.namespace_in(&cluster),
        target,
        components: args.components.clone(),
        mover,
    };
    let done = restore_into_workload(&cluster, &repository, &request).await?;
    for (pod, tail) in &done.logs {
        context.info(&format!(
            "the init container of pod {pod} failed; the end of its log:\n  {}",
            tail.join("\n  ")
        ));
    }
    context.info(&format!(
        "restore session {} from snapshot {}: {:?} in {:.1}s",
        done.session,
        done.snapshot.short(),
        done.phase,
        done.duration.as_secs_f64()
    ));
    let phase = done.phase;
    let rows: Vec<ComponentRow> = done
        .components
        .into_iter()
        .map(|c| ComponentRow {
            component: c.component,
            pod: c.pod,
            phase: c.phase,
            duration_seconds: c.duration.as_secs_f64(),
            files: c.files,
            bytes: c.bytes,
            error: c.error,
        })
        .collect();
    emit(context.output, &rows)?;
    match phase {
        Phase::Succeeded => Ok(Exit::Success),
        Phase::Failed => Err(CliError::user(anyhow!("no component was restored"))),
        _ => Ok(Exit::Partial),
    }
}
