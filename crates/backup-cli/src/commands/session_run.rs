//! `kbackup session-run --plan JSON`: what a BackupSession's Job runs for one repository;
//! `kbackup restore-run --plan JSON`: what a RestoreSession's Job runs. The operator starts
//! them with the plan and the credentials in the environment; the report goes to stdout and
//! to `--report-file` (the container's termination message), where the operator reads it.

use crate::cli::{MoverArgs, RepoArgs, StorageArgs};
use crate::commands::volumes::mover_settings_with_claim;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::repository::{password, storage};
use anyhow::anyhow;
use backup_api::SnapshotPhase;
use backup_usecases::restores::plan::RestorePlan;
use backup_usecases::restores::run::run_restore;
use backup_usecases::sessions::plan::SessionPlan;
use backup_usecases::sessions::report::SessionReport;
use backup_usecases::sessions::run::run_session;
use std::path::Path;

/// Runs the plan and reports; exits 0 only when the snapshot succeeded.
pub async fn run(
    context: &Context,
    plan: &str,
    report_file: Option<&Path>,
    storage_args: StorageArgs,
    mover: &mut MoverArgs,
) -> CliResult {
    let plan: SessionPlan = serde_json::from_str(plan)
        .map_err(|e| CliError::user(anyhow!("--plan is not a session plan: {e}")))?;
    mover.mover_image.clone_from(&plan.image);
    let repo = RepoArgs {
        repo: plan.repository_url.clone(),
        password_file: None,
        encryption_secret: None,
        storage: storage_args,
    };
    let report = match prepared(context, &repo, mover, plan.storage_claim.clone()).await {
        Ok((cluster, opened, password, settings)) => {
            let progress = context.progress();
            run_session(&cluster, &plan, opened, &password, settings, &progress).await
        }
        Err(error) => SessionReport::failed(format!("{:#}", error.error)),
    };
    handed_over(&report, report_file)
}

/// Runs a restore's plan and reports; exits 0 only when every component was restored.
pub async fn restore(
    context: &Context,
    plan: &str,
    report_file: Option<&Path>,
    storage_args: StorageArgs,
    mover: &mut MoverArgs,
) -> CliResult {
    let plan: RestorePlan = serde_json::from_str(plan)
        .map_err(|e| CliError::user(anyhow!("--plan is not a restore plan: {e}")))?;
    mover.mover_image.clone_from(&plan.image);
    let repo = RepoArgs {
        repo: plan.repository_url.clone(),
        password_file: None,
        encryption_secret: None,
        storage: storage_args,
    };
    let report = match prepared(context, &repo, mover, plan.storage_claim.clone()).await {
        Ok((cluster, opened, password, settings)) => {
            let progress = context.progress();
            run_restore(&cluster, &plan, opened, &password, settings, &progress).await
        }
        Err(error) => SessionReport::failed(format!("{:#}", error.error)),
    };
    handed_over(&report, report_file)
}

/// The report on stdout and in `report_file`; the exit by its phase.
fn handed_over(report: &SessionReport, report_file: Option<&Path>) -> CliResult {
    let message = report.message();
    println!("{message}");
    if let Some(path) = report_file {
        std::fs::write(path, &message)
            .map_err(|e| CliError::user(anyhow!("writing {}: {e}", path.display())))?;
    }
    Ok(match report.phase {
        Some(SnapshotPhase::Succeeded) => Exit::Success,
        _ if report.snapshot_id.is_some() => Exit::Partial,
        _ => Exit::UserError,
    })
}

/// The cluster, the repository's storage, its password and the movers' settings.
async fn prepared(
    context: &Context,
    repo: &RepoArgs,
    mover: &MoverArgs,
    storage_claim: Option<String>,
) -> Result<
    (
        backup_k8s::KubeCluster,
        std::sync::Arc<dyn backup_core::ObjectStorage>,
        backup_core::cluster::SecretValue,
        backup_usecases::volumes::manifests::MoverSettings,
    ),
    CliError,
> {
    let cluster = backup_k8s::KubeCluster::connect(&context.kube).await?;
    let opened = storage(context, repo, true).await?;
    let password = password(context, repo).await?;
    let settings = mover_settings_with_claim(context, repo, mover, storage_claim).await?;
    Ok((cluster, opened, password, settings))
}
