//! `kbackup restore cluster ID --include-volumes`: namespaces and claims, the claims
//! filled with their volumes' data, then the rest.

use super::restore::{left_differing, outcomes, render, show_plan, verdict};
use crate::cli::ClusterRestoreArgs;
use crate::commands::volumes::mover_settings;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use anyhow::anyhow;
use backup_core::Phase;
use backup_k8s::KubeCluster;
use backup_k8s::cluster_resources::RestoreOptions;
use backup_repository::{Repository, SnapshotFile};
use backup_usecases::cluster::{plan_application, restore_application};
use indicatif::HumanBytes;

/// Plans the application restore, shows it, and unless a dry run, runs it.
pub(super) async fn restore(
    context: &Context,
    args: &ClusterRestoreArgs,
    options: RestoreOptions,
    repository: &Repository,
    file: &SnapshotFile,
    cluster: &KubeCluster,
) -> CliResult {
    let mut mover = mover_settings(context, &args.repo, &args.mover).await?;
    mover.verify = args.verify;
    let plan = plan_application(repository, file, cluster, &options).await?;
    let counts = plan.counts();
    let to_fill = plan.fills.iter().filter(|f| f.left_alone.is_none()).count();
    let summary = format!(
        "plan for snapshot {}: {} objects in {} waves: {}; {to_fill} claims filled from their volumes before the workloads",
        file.snapshot.id.short(),
        plan.len(),
        plan.waves(),
        outcomes(&counts)
    );
    for fill in &plan.fills {
        match &fill.left_alone {
            None => context.info(&format!(
                "claim {}/{} is filled from {}",
                fill.namespace, fill.claim, fill.component
            )),
            Some(why) => context.info(&format!(
                "claim {}/{} is not filled from {}: {why}",
                fill.namespace, fill.claim, fill.component
            )),
        }
    }
    if !show_plan(context, args.dry_run, &summary, &counts, || plan.objects())? {
        return Ok(Exit::Success);
    }
    let progress = context.progress();
    let done = restore_application(&plan, repository, file, cluster, &mover, &progress).await?;
    render(context, &done.objects, plan.len(), plan.waves())?;
    for volume in &done.volumes {
        if !volume.log_tail.is_empty() {
            context.info(&format!(
                "the mover of claim {} failed; the end of its log:\n  {}",
                volume.claim,
                volume.log_tail.join("\n  ")
            ));
        }
        context.info(&format!(
            "claim {} from {}: {:?} in {:.1}s, {} files, {}{}",
            volume.claim,
            volume.component,
            volume.phase,
            volume.duration.as_secs_f64(),
            volume.written.files,
            HumanBytes(volume.written.bytes),
            volume
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
    }
    if let Some(left) = left_differing(args.existing, &counts) {
        eprintln!("{left}");
    }
    if !done.rest_restored {
        return Err(CliError {
            exit: Exit::Partial,
            error: anyhow!(
                "a claim could not be filled, so the workloads and the rest were not restored (they would start without their data); delete the claims this restore made and run it again"
            ),
        });
    }
    if done.phase() != Phase::Succeeded && done.objects.report.errors() == 0 {
        return Err(CliError {
            exit: Exit::Partial,
            error: anyhow!("not every volume was restored as it was (see above)"),
        });
    }
    verdict(context, &done.objects)
}
