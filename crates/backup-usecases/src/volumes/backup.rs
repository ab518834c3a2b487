//! Backing up the volumes of workloads: one mover per volume in the cluster, at most
//! `concurrency` at a time, then one snapshot of them all.

use super::discovery::{
    DiscoveryError, FoundVolumes, SkippedVolume, VolumeSelection, find_volumes,
};
use super::hooks::{BackupHooks, HookRun};
use super::manifests::{MoverSettings, NotText, backup_job};
use super::mover::{MoverBackupReport, find_report};
use super::pod_runs::run_by_pod;
use super::quiesce::{Quiesce, resume_quiesced, scalable, scale_down};
use super::target::{ClaimAccess, VolumeTarget, WorkloadRef};
use crate::snapshot::{SnapshotMarks, new_snapshot};
use backup_core::cluster::{JobControl, PodExec, ResourceStore, WorkloadControl};
use backup_core::{ClusterError, Component, Phase, Progress, SnapshotId, Totals};
use backup_repository::tree::{TREE_ENGINE, TreeContent};
use backup_repository::{Repository, RepositoryError, SnapshotFile};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The label kbackup puts on volume snapshots (its value: the namespace).
pub const VOLUMES_LABEL: &str = "kbackup.io/volumes";

/// Why volumes could not be backed up at all.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// Finding the volumes failed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The cluster failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The repository failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    /// A credential cannot be handed to the movers.
    #[error(transparent)]
    Credentials(#[from] NotText),
    /// Nothing to back up.
    #[error(
        "no volume to back up in namespace {namespace}{}",
        skipped_text(skipped)
    )]
    NothingToBackUp {
        /// The namespace.
        namespace: String,
        /// The volumes found but left out.
        skipped: Vec<SkippedVolume>,
    },
    /// The snapshot does not hold what the restore asks for.
    #[error("{0}")]
    Snapshot(String),
    /// Options that cannot go together.
    #[error("{0}")]
    Options(String),
}

fn skipped_text(skipped: &[SkippedVolume]) -> String {
    skipped
        .iter()
        .map(|s| format!("; {} claim {}: {}", s.workload, s.claim, s.reason))
        .collect()
}

/// How volumes are moved.
#[derive(Debug, Clone)]
pub struct VolumeOptions {
    /// How the movers run.
    pub mover: MoverSettings,
    /// Commands run in each pod before and after its volumes.
    pub hooks: BackupHooks,
    /// Read every file, ignoring the previous snapshot.
    pub force: bool,
    /// Scale the workloads down for the backup.
    pub quiesce: Quiesce,
}

/// What to back up, and how.
#[derive(Debug, Clone)]
pub struct VolumeBackupRequest {
    /// The volumes.
    pub selection: VolumeSelection,
    /// How they are moved.
    pub options: VolumeOptions,
    /// The snapshot's tags and labels.
    pub marks: SnapshotMarks,
}

/// One volume's outcome (seed 004's `status.components` entry, with the mover's counts).
#[derive(Debug, Clone)]
pub struct VolumeReport {
    /// The component.
    pub component: String,
    /// The claim.
    pub claim: String,
    /// The node its mover ran on.
    pub node: String,
    /// Succeeded, PartiallyFailed (entries not backed up) or Failed.
    pub phase: Phase,
    /// How long its mover took.
    pub duration: Duration,
    /// Files.
    pub files: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Files unchanged since the previous snapshot, not read.
    pub files_unchanged: u64,
    /// Bytes the repository did not have yet.
    pub added_bytes: u64,
    /// Why it failed (or what was not backed up).
    pub error: Option<String>,
    /// The end of the mover's log, when it failed.
    pub log_tail: Vec<String>,
}

/// What a volume backup did.
#[derive(Debug, Clone)]
pub struct VolumeBackupReport {
    /// The snapshot, when one was committed (none when every volume failed).
    pub id: Option<SnapshotId>,
    /// Succeeded, PartiallyFailed or Failed.
    pub phase: Phase,
    /// Each volume.
    pub volumes: Vec<VolumeReport>,
    /// Volumes found but not backed up.
    pub skipped: Vec<SkippedVolume>,
    /// Each hook in each pod.
    pub hooks: Vec<HookRun>,
    /// Bytes the repository did not have yet.
    pub added_bytes: u64,
    /// How long it took.
    pub duration: Duration,
}

/// Volumes moved into the repository and not yet in a snapshot: what a snapshot of them
/// holds, and what happened.
#[derive(Debug, Clone, Default)]
pub struct MovedVolumes {
    /// Each volume.
    pub volumes: Vec<VolumeReport>,
    /// Volumes found but not backed up.
    pub skipped: Vec<SkippedVolume>,
    /// Each hook in each pod.
    pub hooks: Vec<HookRun>,
    /// The snapshot's components, one per volume (failed ones included).
    pub components: Vec<Component>,
    /// The trees of the volumes that were backed up.
    pub trees: Vec<TreeContent>,
    /// Bytes the repository did not have yet.
    pub added_bytes: u64,
}

impl MovedVolumes {
    /// Succeeded, PartiallyFailed or Failed; a hook that failed makes it PartiallyFailed at
    /// least.
    pub fn phase(&self) -> Phase {
        let hooks_failed = self.hooks.iter().any(|h| !h.succeeded && !h.skipped);
        match Phase::combine(self.volumes.iter().map(|v| v.phase)) {
            Phase::Succeeded if hooks_failed => Phase::PartiallyFailed,
            phase => phase,
        }
    }

    /// Adds another namespace's volumes.
    pub fn extend(&mut self, other: MovedVolumes) {
        self.volumes.extend(other.volumes);
        self.skipped.extend(other.skipped);
        self.hooks.extend(other.hooks);
        self.components.extend(other.components);
        self.trees.extend(other.trees);
        self.added_bytes += other.added_bytes;
    }
}

/// Finds the volumes of a selection and backs each up through a mover (pod by pod, between
/// the pod's hooks) into the repository, without a snapshot; `progress` counts volumes.
pub async fn move_volumes<C: ResourceStore + JobControl + PodExec + WorkloadControl + ?Sized>(
    cluster: &C,
    repository: &Repository,
    selection: &VolumeSelection,
    options: &VolumeOptions,
    progress: &dyn Progress,
) -> Result<MovedVolumes, VolumeError> {
    if options.quiesce == Quiesce::Scale && !options.hooks.is_empty() {
        return Err(VolumeError::Options(
            "quiescing by scaling down stops the pods the hooks would run in: use one or the other"
                .into(),
        ));
    }
    let FoundVolumes { targets, skipped } = find_volumes(cluster, selection).await?;
    let (targets, skipped) = mountable(targets, skipped, options.quiesce);
    if targets.is_empty() {
        return Ok(MovedVolumes {
            skipped,
            ..MovedVolumes::default()
        });
    }
    let snapshots = repository.snapshots().await?;
    let run = format!("kbackup-mover-{}", run_id());
    let mut jobs = Vec::with_capacity(targets.len());
    for (n, target) in targets.iter().enumerate() {
        let parent = match options.force {
            true => None,
            false => parent_snapshot(&snapshots, &target.component()),
        };
        jobs.push(backup_job(
            &options.mover,
            &format!("{run}-{n}"),
            target,
            parent.as_deref(),
        )?);
    }
    progress.start(
        &format!("backing up {} volumes", targets.len()),
        Some(targets.len() as u64),
    );
    let quiesced = match options.quiesce {
        Quiesce::Scale => {
            let mut workloads: Vec<WorkloadRef> = targets
                .iter()
                .map(|t| t.workload.clone())
                .filter(|w| scalable(w.kind))
                .collect();
            workloads.dedup();
            let namespace = &selection.namespace;
            match scale_down(cluster, namespace, &workloads, options.mover.start_timeout).await {
                Ok(scaled) => scaled,
                Err(error) => {
                    resume_quiesced(cluster, namespace).await?;
                    return Err(error.into());
                }
            }
        }
        Quiesce::None => Vec::new(),
    };
    let (runs, hooks) = run_by_pod(
        cluster,
        &targets,
        &jobs,
        &options.hooks,
        &options.mover,
        progress,
    )
    .await;
    progress.finish();
    if !quiesced.is_empty() {
        resume_quiesced(cluster, &selection.namespace).await?;
    }
    let index = repository.load_index().await?;
    let mut moved = MovedVolumes {
        skipped,
        hooks,
        ..MovedVolumes::default()
    };
    for ((outcome, duration), target) in runs.into_iter().zip(&targets) {
        let mut report = VolumeReport {
            component: target.component(),
            claim: target.claim.clone(),
            node: target.node.clone(),
            phase: Phase::Failed,
            duration,
            files: 0,
            bytes: 0,
            files_unchanged: 0,
            added_bytes: 0,
            error: None,
            log_tail: vec![],
        };
        match read_outcome(outcome, target, &index) {
            Ok(mover) => {
                report.phase = if mover.warning_count > 0 {
                    Phase::PartiallyFailed
                } else {
                    Phase::Succeeded
                };
                if let Some(first) = mover.warnings.first() {
                    report.error = Some(format!(
                        "{} entries not backed up (first: {first})",
                        mover.warning_count
                    ));
                }
                report.files = mover.tree.files;
                report.bytes = mover.tree.bytes;
                report.files_unchanged = mover.files_unchanged;
                report.added_bytes = mover.added_bytes;
                moved.trees.push(mover.tree);
            }
            Err((error, log_tail)) => {
                report.error = Some(error);
                report.log_tail = log_tail;
            }
        }
        let mut component = Component::new(&report.component, TREE_ENGINE);
        component.phase = report.phase;
        component.duration = duration;
        component.size = report.bytes;
        component.error.clone_from(&report.error);
        component.claim = Some(target.claim.clone());
        moved.added_bytes += report.added_bytes;
        moved.components.push(component);
        moved.volumes.push(report);
    }
    Ok(moved)
}

/// The targets a mover may mount; the others skipped, with why. A ReadWriteOncePod claim may
/// be mounted by no pod but its own while that runs: only once its workload is scaled down.
fn mountable(
    targets: Vec<VolumeTarget>,
    mut skipped: Vec<SkippedVolume>,
    quiesce: Quiesce,
) -> (Vec<VolumeTarget>, Vec<SkippedVolume>) {
    let (targets, exclusive): (Vec<_>, Vec<_>) = targets.into_iter().partition(|t| {
        t.access != ClaimAccess::OnePod || (quiesce == Quiesce::Scale && scalable(t.workload.kind))
    });
    skipped.extend(exclusive.into_iter().map(|t| {
        SkippedVolume {
            reason: match scalable(t.workload.kind) {
                true => "ReadWriteOncePod: no pod but its own may mount it while it runs \
                     (quiesce the workload by scaling it down to back it up)"
                    .into(),
                false => format!(
                    "ReadWriteOncePod: no pod but its own may mount it while it runs, and a {} \
                 cannot be scaled down",
                    t.workload.kind.as_str()
                ),
            },
            workload: t.workload,
            claim: t.claim,
        }
    }));
    (targets, skipped)
}

/// Finds the volumes, backs each up through a mover (pod by pod, between the pod's hooks),
/// and commits one snapshot holding those that succeeded; `progress` counts volumes.
pub async fn back_up_volumes<C: ResourceStore + JobControl + PodExec + WorkloadControl + ?Sized>(
    cluster: &C,
    repository: &Repository,
    request: &VolumeBackupRequest,
    progress: &dyn Progress,
) -> Result<VolumeBackupReport, VolumeError> {
    let started = Instant::now();
    let moved = move_volumes(
        cluster,
        repository,
        &request.selection,
        &request.options,
        progress,
    )
    .await?;
    if moved.volumes.is_empty() {
        return Err(VolumeError::NothingToBackUp {
            namespace: request.selection.namespace.clone(),
            skipped: moved.skipped,
        });
    }
    let phase = moved.phase();
    let id = match moved.trees.is_empty() {
        true => None,
        false => {
            let totals = Totals {
                items: moved.trees.iter().map(|t| t.files + t.dirs).sum(),
                bytes: moved.trees.iter().map(|t| t.bytes).sum(),
                added_bytes: moved.added_bytes,
            };
            let labels = BTreeMap::from([(
                VOLUMES_LABEL.to_owned(),
                request.selection.namespace.clone(),
            )]);
            let snapshot = new_snapshot(request.marks.clone(), labels, moved.components, totals);
            Some(
                repository
                    .write_snapshot(SnapshotFile {
                        snapshot,
                        streams: vec![],
                        trees: moved.trees,
                    })
                    .await?,
            )
        }
    };
    Ok(VolumeBackupReport {
        id,
        phase,
        volumes: moved.volumes,
        skipped: moved.skipped,
        hooks: moved.hooks,
        added_bytes: moved.added_bytes,
        duration: started.elapsed(),
    })
}

/// The mover's report, checked: the tree is the component asked for and every chunk of its
/// listing is in the repository (a snapshot never refers to what is not there). Else why
/// not, with the end of the mover's log.
fn read_outcome(
    outcome: Result<super::run::MoverRun, String>,
    target: &VolumeTarget,
    index: &backup_repository::Index,
) -> Result<MoverBackupReport, (String, Vec<String>)> {
    let run = outcome.map_err(|e| (e, vec![]))?;
    if let Some(failure) = &run.failure {
        return Err((failure.clone(), run.log_tail()));
    }
    let report: MoverBackupReport = match find_report(&run.log) {
        Some(Ok(report)) => report,
        Some(Err(error)) => return Err((error, run.log_tail())),
        None => return Err(("the mover ended without a report".into(), run.log_tail())),
    };
    let component = target.component();
    if report.tree.name != component {
        return Err((
            format!(
                "the mover reported {:?}, not {component:?}",
                report.tree.name
            ),
            run.log_tail(),
        ));
    }
    if let Some(missing) = report
        .tree
        .listing
        .chunks
        .iter()
        .find(|c| !index.contains_hex(c))
    {
        return Err((
            format!("the mover's listing chunk {missing} is not in the repository's index"),
            run.log_tail(),
        ));
    }
    Ok(report)
}

/// The newest snapshot that has this component: the mover reads only what changed since.
fn parent_snapshot(snapshots: &[SnapshotFile], component: &str) -> Option<String> {
    snapshots
        .iter()
        .rev()
        .find(|s| s.trees.iter().any(|t| t.name == component))
        .map(|s| s.snapshot.id.to_string())
}

/// An id for a run's object names: the time to the millisecond (runs of one namespace a
/// millisecond apart are not expected; a clash is refused by the API server, not merged).
pub(crate) fn run_id() -> String {
    chrono::Utc::now().format("%m%d%H%M%S%3f").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(workload: &str, access: ClaimAccess) -> VolumeTarget {
        let workload = WorkloadRef::parse(workload).unwrap();
        VolumeTarget {
            namespace: "demo".into(),
            member: workload.name.clone(),
            workload,
            volume: "data".into(),
            claim: "data".into(),
            pod: "p".into(),
            node: "n1".into(),
            access,
            tolerations: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_claim_of_one_pod_is_backed_up_only_once_its_workload_is_scaled_down() {
        let targets = || {
            vec![
                target("deploy/web", ClaimAccess::OnePod),
                target("ds/agent", ClaimAccess::OnePod),
                target("sts/db", ClaimAccess::OneNode),
            ]
        };
        let names = |targets: &[VolumeTarget]| -> Vec<String> {
            targets.iter().map(|t| t.workload.to_string()).collect()
        };
        let (live, skipped) = mountable(targets(), vec![], Quiesce::None);
        assert_eq!(names(&live), ["statefulset/db"]);
        assert_eq!(skipped.len(), 2);
        assert!(skipped[0].reason.contains("scaling it down"), "{skipped:?}");
        let (quiesced, skipped) = mountable(targets(), vec![], Quiesce::Scale);
        assert_eq!(names(&quiesced), ["deployment/web", "statefulset/db"]);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].workload.to_string(), "daemonset/agent");
        assert!(
            skipped[0]
                .reason
                .contains("a daemonset cannot be scaled down"),
            "{skipped:?}"
        );
    }
}
