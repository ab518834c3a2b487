//! Restoring a volume component of a snapshot into a claim, through a mover pod that mounts
//! it.

use super::backup::{VolumeError, run_id};
use super::manifests::{MoverSettings, Placement, RestoreSource, restore_job};
use super::mover::{MoverRestoreReport, find_report};
use super::run::run_mover;
use super::target::component_matches;
use crate::selection::{SnapshotSelector, find_snapshot};
use backup_core::cluster::{JobControl, ResourceStore};
use backup_core::{Phase, SnapshotId};
use backup_repository::Repository;
use std::time::{Duration, Instant};

/// What to restore where.
#[derive(Debug, Clone)]
pub struct ClaimRestoreRequest {
    /// The snapshot: an id prefix or `latest`.
    pub snapshot: String,
    /// Which snapshots it is looked up among.
    pub among: SnapshotSelector,
    /// The component: its name, its member (`db-1`) or `member/volume`.
    pub component: String,
    /// The claim's namespace.
    pub namespace: String,
    /// The claim.
    pub claim: String,
    /// Replace files the claim already has (else the mover refuses before writing).
    pub overwrite: bool,
    /// How the mover runs.
    pub mover: MoverSettings,
}

/// What a restore into a claim did.
#[derive(Debug, Clone)]
pub struct ClaimRestoreReport {
    /// The snapshot restored from.
    pub snapshot: SnapshotId,
    /// The component.
    pub component: String,
    /// The claim (`namespace/name`).
    pub claim: String,
    /// Succeeded, PartiallyFailed (entries not restored as they were) or Failed.
    pub phase: Phase,
    /// How long it took.
    pub duration: Duration,
    /// What the mover wrote (zero when it failed).
    pub written: MoverRestoreReport,
    /// Why it failed.
    pub error: Option<String>,
    /// The end of the mover's log, when it failed.
    pub log_tail: Vec<String>,
}

/// Restores one volume component into a claim.
pub async fn restore_into_claim<C: ResourceStore + JobControl + ?Sized>(
    cluster: &C,
    repository: &Repository,
    request: &ClaimRestoreRequest,
) -> Result<ClaimRestoreReport, VolumeError> {
    let started = Instant::now();
    let snapshots = repository.snapshots().await?;
    let file = find_snapshot(&snapshots, &request.snapshot, &request.among)
        .map_err(|e| VolumeError::Snapshot(e.to_string()))?;
    let names: Vec<&str> = file.trees.iter().map(|t| t.name.as_str()).collect();
    let matching: Vec<&str> = match names.contains(&request.component.as_str()) {
        true => vec![request.component.as_str()],
        false => names
            .iter()
            .copied()
            .filter(|n| component_matches(n, &request.component))
            .collect(),
    };
    let component = match matching.as_slice() {
        [one] => (*one).to_owned(),
        [] => {
            return Err(VolumeError::Snapshot(format!(
                "snapshot {} has no volume component '{}' (it has: {})",
                file.snapshot.id.short(),
                request.component,
                names.join(", ")
            )));
        }
        many => {
            return Err(VolumeError::Snapshot(format!(
                "'{}' names {} components of snapshot {}: {}",
                request.component,
                many.len(),
                file.snapshot.id.short(),
                many.join(", ")
            )));
        }
    };
    let name = format!("kbackup-mover-{}-0", run_id());
    let job = restore_job(
        &request.mover,
        &name,
        &request.namespace,
        &request.claim,
        &RestoreSource {
            snapshot: file.snapshot.id.to_string(),
            component: component.clone(),
            overwrite: request.overwrite,
            verify: request.mover.verify,
        },
        &Placement::default(),
    )?;
    let run = run_mover(
        cluster,
        &job,
        request.mover.start_timeout,
        request.mover.timeout,
    )
    .await?;
    let mut report = ClaimRestoreReport {
        snapshot: file.snapshot.id.clone(),
        component,
        claim: format!("{}/{}", request.namespace, request.claim),
        phase: Phase::Failed,
        duration: Duration::ZERO,
        written: MoverRestoreReport::default(),
        error: None,
        log_tail: vec![],
    };
    let read = match &run.failure {
        Some(failure) => Err(failure.clone()),
        None => match find_report::<MoverRestoreReport>(&run.log) {
            Some(read) => read,
            None => Err("the mover ended without a report".into()),
        },
    };
    match read {
        Ok(written) if written.component == report.component => {
            report.phase = match written.warning_count {
                0 => Phase::Succeeded,
                _ => Phase::PartiallyFailed,
            };
            if let Some(first) = written.warnings.first() {
                report.error = Some(format!(
                    "{} entries not restored as they were (first: {first})",
                    written.warning_count
                ));
            }
            report.written = written;
        }
        Ok(written) => {
            report.error = Some(format!("the mover restored {:?}", written.component));
            report.log_tail = run.log_tail();
        }
        Err(error) => {
            report.error = Some(error);
            report.log_tail = run.log_tail();
        }
    }
    report.duration = started.elapsed();
    Ok(report)
}
