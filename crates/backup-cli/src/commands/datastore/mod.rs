//! `kbackup stackgraph|settings|victoriametrics ...`: the Job-based data stores of a
//! StackState / SUSE Observability installation, compatible with `sts-backup`.

mod backfill;
mod backup;
mod cronjob_backup;
mod expire;
mod finalize;
mod list;
mod restore;

use crate::cli::{
    DataStoreCommand, SettingsCommand, StackGraphCommand, StackGraphV2Command,
    VictoriaMetricsCommand,
};
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use anyhow::anyhow;

use backup_core::cluster::{ContainerLog, JobState};
use backup_usecases::stackstate::{BackfillStep, DataStore, SpecOptions, backup_failure};

/// Runs a stackgraph command.
pub async fn stackgraph(context: &Context, command: StackGraphCommand) -> CliResult {
    let kind = DataStore::StackGraph;
    match command {
        StackGraphCommand::Restore { source, restore } => {
            restore::run(context, kind, &source, &restore, SpecOptions::default()).await
        }
        StackGraphCommand::Backup { source, timeout } => {
            backup::run(context, &source, timeout).await
        }
        StackGraphCommand::Expire {
            source,
            older_than,
            dry_run,
        } => expire::run(context, &source, older_than, dry_run).await,
        StackGraphCommand::Common(common) => run_common(context, kind, common).await,
    }
}

/// Runs a stackgraph-v2 command.
pub async fn stackgraph_v2(context: &Context, command: StackGraphV2Command) -> CliResult {
    let kind = DataStore::StackGraphV2;
    match command {
        StackGraphV2Command::Restore {
            source,
            restore,
            skip_stackpacks,
        } => {
            let options = SpecOptions {
                skip_stackpacks,
                from_old_pvc: false,
            };
            restore::run(context, kind, &source, &restore, options).await
        }
        StackGraphV2Command::Backfill { source, timeout } => {
            backfill::run(context, &source, BackfillStep::Backfill, timeout).await
        }
        StackGraphV2Command::Abort { source, timeout } => {
            backfill::run(context, &source, BackfillStep::Abort, timeout).await
        }
        StackGraphV2Command::Common(common) => run_common(context, kind, common).await,
    }
}

/// Runs a settings command.
pub async fn settings(context: &Context, command: SettingsCommand) -> CliResult {
    let kind = DataStore::Settings;
    match command {
        SettingsCommand::Restore {
            source,
            restore,
            skip_stackpacks,
            from_old_pvc,
        } => {
            let options = SpecOptions {
                skip_stackpacks,
                from_old_pvc,
            };
            restore::run(context, kind, &source, &restore, options).await
        }
        SettingsCommand::Backup {
            source,
            cronjob,
            timeout,
        } => cronjob_backup::run(context, kind, &source, cronjob.as_deref(), timeout).await,
        SettingsCommand::Common(common) => run_common(context, kind, common).await,
    }
}

/// Runs a victoriametrics command.
pub async fn victoria_metrics(context: &Context, command: VictoriaMetricsCommand) -> CliResult {
    let kind = DataStore::VictoriaMetrics;
    match command {
        VictoriaMetricsCommand::Restore { source, restore } => {
            restore::run(context, kind, &source, &restore, SpecOptions::default()).await
        }
        VictoriaMetricsCommand::Backup {
            source,
            cronjob,
            timeout,
        } => cronjob_backup::run(context, kind, &source, Some(&cronjob), timeout).await,
        VictoriaMetricsCommand::Common(common) => run_common(context, kind, common).await,
    }
}

async fn run_common(context: &Context, kind: DataStore, command: DataStoreCommand) -> CliResult {
    match command {
        DataStoreCommand::List { source } => list::run(context, kind, &source).await,
        DataStoreCommand::CheckAndFinalize {
            source,
            job,
            wait,
            timeout,
        } => finalize::run(context, kind, &source, &job, wait.then_some(timeout)).await,
    }
}

/// Prints the logs of every container of a failed Job on stderr.
/// What a backup Job did, as its end is reported.
trait BackupOutcome: Tabular {
    /// The Job.
    fn job(&self) -> &str;
    /// How it ended.
    fn state(&self) -> &JobState;
    /// Logs of every container, when it failed.
    fn logs(&self) -> &[ContainerLog];
    /// What it wrote (empty: nothing).
    fn written(&self) -> String;
}

/// The end of a backup Job of `data_store`: its `outcome` shown, its logs and an error when
/// it failed or wrote nothing, else what it wrote.
fn backup_ended<T: BackupOutcome>(context: &Context, outcome: &T, data_store: &str) -> CliResult {
    emit(context.output, std::slice::from_ref(outcome))?;
    let (job, wrote) = (outcome.job(), outcome.written());
    match backup_failure(job, outcome.state(), &wrote, data_store) {
        Some(failure) => {
            if matches!(outcome.state(), JobState::Failed(_)) {
                print_logs(outcome.logs());
            }
            Err(CliError::user(anyhow!(failure)))
        }
        None => {
            context.info(&format!("backup {wrote} written by Job {job}"));
            Ok(Exit::Success)
        }
    }
}

fn print_logs(logs: &[ContainerLog]) {
    for log in logs {
        eprintln!(
            "--- logs of pod {} container {} ---\n{}",
            log.pod,
            log.container,
            log.text.trim_end()
        );
    }
}
