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
use crate::exit::CliResult;

use backup_core::cluster::ContainerLog;
use backup_usecases::stackstate::{BackfillStep, DataStore, SpecOptions};

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
