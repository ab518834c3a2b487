//! `kbackup session-run --plan JSON`: what a BackupSession's Job runs for one repository;
//! `kbackup restore-run --plan JSON`: what a RestoreSession's Job runs. The operator starts
//! them with the plan and the credentials in the environment; the report goes to stdout and
//! to `--report-file` (the container's termination message), where the operator reads it.

use crate::cli::{OperatorJobArgs, RepoArgs};
use crate::commands::volumes::mover_settings_with_claim;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::repository::{password, storage};
use anyhow::anyhow;
use async_trait::async_trait;
use backup_api::SnapshotPhase;
use backup_core::Progress;
use backup_usecases::restores::plan::RestorePlan;
use backup_usecases::restores::run::run_restore;
use backup_usecases::sessions::plan::SessionPlan;
use backup_usecases::sessions::report::SessionReport;
use backup_usecases::sessions::run::run_session;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Runs a session's plan and reports; exits 0 only when the snapshot succeeded.
pub async fn session(context: &Context, args: OperatorJobArgs) -> CliResult {
    run_plan::<SessionPlan>(context, args, "a session plan").await
}

/// Runs a restore's plan and reports; exits 0 only when every component was restored.
pub async fn restore(context: &Context, args: OperatorJobArgs) -> CliResult {
    run_plan::<RestorePlan>(context, args, "a restore plan").await
}

/// A plan an operator's Job runs: where its repository is, and its procedure.
#[async_trait(?Send)]
trait JobPlan: DeserializeOwned + Sync {
    /// The kbackup image (for movers), the repository's URL and a local storage's claim.
    fn location(&self) -> (&str, &str, Option<String>);
    /// Runs the procedure; never fails: what went wrong is in the report.
    async fn run(&self, ready: Prepared, progress: &dyn Progress) -> SessionReport;
}

#[async_trait(?Send)]
impl JobPlan for SessionPlan {
    fn location(&self) -> (&str, &str, Option<String>) {
        (
            &self.image,
            &self.repository_url,
            self.storage_claim.clone(),
        )
    }

    async fn run(&self, ready: Prepared, progress: &dyn Progress) -> SessionReport {
        run_session(
            &ready.cluster,
            self,
            ready.storage,
            &ready.password,
            ready.mover,
            progress,
        )
        .await
    }
}

#[async_trait(?Send)]
impl JobPlan for RestorePlan {
    fn location(&self) -> (&str, &str, Option<String>) {
        (
            &self.image,
            &self.repository_url,
            self.storage_claim.clone(),
        )
    }

    async fn run(&self, ready: Prepared, progress: &dyn Progress) -> SessionReport {
        run_restore(
            &ready.cluster,
            self,
            ready.storage,
            &ready.password,
            ready.mover,
            progress,
        )
        .await
    }
}

/// Parses the plan (`what` names it in the error), prepares what it runs with, runs it and
/// hands the report over.
async fn run_plan<P: JobPlan>(
    context: &Context,
    mut args: OperatorJobArgs,
    what: &str,
) -> CliResult {
    let plan: P = serde_json::from_str(&args.plan)
        .map_err(|e| CliError::user(anyhow!("--plan is not {what}: {e}")))?;
    let (image, url, claim) = plan.location();
    let report = match prepared(context, &mut args, image, url, claim).await {
        Ok(ready) => plan.run(ready, &context.progress()).await,
        Err(report) => report,
    };
    handed_over(&report, args.report_file.as_deref())
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

/// What a plan runs with.
struct Prepared {
    cluster: backup_k8s::KubeCluster,
    storage: std::sync::Arc<dyn backup_core::ObjectStorage>,
    password: backup_core::cluster::SecretValue,
    mover: backup_usecases::volumes::manifests::MoverSettings,
}

/// The cluster, the repository at `url` (its storage and password from the environment) and
/// the movers' settings (of `image`, mounting `storage_claim`); a failed report saying why
/// when one cannot be had.
async fn prepared(
    context: &Context,
    args: &mut OperatorJobArgs,
    image: &str,
    url: &str,
    storage_claim: Option<String>,
) -> Result<Prepared, SessionReport> {
    args.mover.mover_image = image.to_owned();
    let repo = RepoArgs {
        repo: url.to_owned(),
        password_file: None,
        encryption_secret: None,
        storage: args.storage.clone(),
    };
    let ready = async {
        Ok::<_, CliError>(Prepared {
            cluster: backup_k8s::KubeCluster::connect(&context.kube).await?,
            storage: storage(context, &repo, true).await?,
            password: password(context, &repo).await?,
            mover: mover_settings_with_claim(context, &repo, &args.mover, storage_claim).await?,
        })
    };
    ready
        .await
        .map_err(|error| SessionReport::failed(format!("{:#}", error.error)))
}
