//! The movers of a backup run pod by pod: a pod's pre-backup hooks, its volumes' movers,
//! then its post-backup hooks, so that a pod is frozen only while its own volumes are read.
//! At most `concurrency` pods are worked on, and at most `concurrency` movers run, at once.

use super::hooks::{BackupHooks, HookRun, HookStage, run_hooks};
use super::manifests::{MoverJob, MoverSettings};
use super::mover::{MoverBackupReport, find_report};
use super::run::{MoverRun, run_mover};
use super::target::VolumeTarget;
use backup_core::Progress;
use backup_core::cluster::{JobControl, PodExec, ResourceStore};
use futures::StreamExt;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// One volume's mover: how it ended (or why it did not run), and how long it took.
pub(crate) type VolumeRun = (Result<MoverRun, String>, Duration);

/// One pod's work: its volumes' runs (by target index) and its hooks' runs.
type PodRun = (Vec<(usize, VolumeRun)>, Vec<HookRun>);

/// Runs the movers of `jobs` (one per target, in the same order) pod by pod, with the
/// hooks; returns each volume's run, in the targets' order, and every hook's run.
pub(crate) async fn run_by_pod<C: ResourceStore + JobControl + PodExec + ?Sized>(
    cluster: &C,
    targets: &[VolumeTarget],
    jobs: &[MoverJob],
    hooks: &BackupHooks,
    settings: &MoverSettings,
    progress: &dyn Progress,
) -> (Vec<VolumeRun>, Vec<HookRun>) {
    let mut pods: Vec<(&VolumeTarget, Vec<usize>)> = Vec::new();
    for (n, target) in targets.iter().enumerate() {
        match pods.iter_mut().find(|(t, _)| t.pod == target.pod) {
            Some((_, members)) => members.push(n),
            None => pods.push((target, vec![n])),
        }
    }
    let concurrency = settings.concurrency.max(1);
    let movers = Semaphore::new(concurrency);
    let movers = &movers;
    let per_pod: Vec<PodRun> = futures::stream::iter(pods)
        .map(|(first, members)| async move {
            let (namespace, pod, workload) = (&first.namespace, &first.pod, &first.workload);
            let mut hook_runs = run_hooks(
                cluster,
                namespace,
                pod,
                workload,
                HookStage::PreBackup,
                &hooks.pre_backup,
                true,
            )
            .await;
            let pre_failure = hook_runs.iter().find(|r| !r.succeeded).map(|r| {
                format!(
                    "pre-backup hook '{}' failed: {}",
                    r.name,
                    r.error.as_deref().unwrap_or("no reason given")
                )
            });
            let runs: Vec<(usize, VolumeRun)> = match &pre_failure {
                Some(failure) => members
                    .iter()
                    .map(|n| (*n, (Err(failure.clone()), Duration::ZERO)))
                    .collect(),
                None => {
                    futures::future::join_all(members.iter().map(|n| async move {
                        let _permit = movers.acquire().await.expect("the semaphore stays open");
                        let began = Instant::now();
                        let run =
                            run_mover(cluster, &jobs[*n], settings.start_timeout, settings.timeout)
                                .await
                                .map_err(|e| e.to_string());
                        (*n, (run, began.elapsed()))
                    }))
                    .await
                }
            };
            progress.advance(members.len() as u64);
            let succeeded = runs.iter().all(|(_, (run, _))| reported(run));
            hook_runs.extend(
                run_hooks(
                    cluster,
                    namespace,
                    pod,
                    workload,
                    HookStage::PostBackup,
                    &hooks.post_backup,
                    succeeded,
                )
                .await,
            );
            (runs, hook_runs)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut volumes: Vec<Option<VolumeRun>> = vec![None; targets.len()];
    let mut hook_runs = Vec::new();
    for (runs, hooks) in per_pod {
        for (n, run) in runs {
            volumes[n] = Some(run);
        }
        hook_runs.extend(hooks);
    }
    let volumes = volumes
        .into_iter()
        .map(|run| run.unwrap_or_else(|| (Err("not run".into()), Duration::ZERO)))
        .collect();
    (volumes, hook_runs)
}

/// Whether a mover ended well and reported (what post-backup hooks' policies go by).
fn reported(run: &Result<MoverRun, String>) -> bool {
    run.as_ref().is_ok_and(|run| {
        run.failure.is_none() && matches!(find_report::<MoverBackupReport>(&run.log), Some(Ok(_)))
    })
}
