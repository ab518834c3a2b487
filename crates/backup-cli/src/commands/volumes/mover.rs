//! `kbackup mover backup|restore`: what a mover pod runs. It prints its report as the last
//! line of its output, for the command that started it.

use crate::cli::MoverCommand;
use crate::context::Context;
use crate::exit::CliError;
use crate::exit::{CliResult, Exit};
use crate::repository::open;
use anyhow::anyhow;
use backup_usecases::volumes::mover::{
    PodRestore, RESTORE_ROOT, RestoreMode, back_up_volume, report_line, restore_pod_volumes,
    restore_volume,
};

/// Runs the mover's side of a volume backup or restore.
pub async fn mover(context: &Context, action: MoverCommand) -> CliResult {
    let line = match action {
        MoverCommand::Backup {
            dir,
            repo,
            component,
            parent,
        } => {
            let repository = open(context, &repo).await?;
            let report = back_up_volume(
                &repository,
                &dir,
                &component,
                parent.as_deref(),
                &context.progress(),
            )
            .await?;
            report_line(&report)
        }
        MoverCommand::Restore {
            dir,
            repo,
            snapshot,
            component,
            overwrite,
            verify,
        } => {
            let repository = open(context, &repo).await?;
            let report = restore_volume(
                &repository,
                &snapshot,
                &component,
                dir,
                RestoreMode { overwrite, verify },
                &context.progress(),
            )
            .await?;
            report_line(&report)
        }
        MoverCommand::RestorePod {
            repo,
            snapshot,
            session,
            restores,
            pod,
        } => {
            let restores = restores
                .iter()
                .map(|r| PodRestore::parse(r).map_err(|e| CliError::user(anyhow!("--restore {e}"))))
                .collect::<Result<Vec<_>, _>>()?;
            let repository = open(context, &repo).await?;
            let report = restore_pod_volumes(
                &repository,
                &snapshot,
                &session,
                &pod,
                &restores,
                std::path::Path::new(RESTORE_ROOT),
                &context.progress(),
            )
            .await?;
            report_line(&report)
        }
    };
    println!("{line}");
    Ok(Exit::Success)
}
