//! `kbackup`: backup and restore for Kubernetes. Thin: parse, call a library, render.

mod allocator;
mod cli;
mod commands;
mod config;
mod context;
mod exit;
mod next_step;
mod output;
mod progress;
mod repository;
mod size;

use clap::Parser;
use cli::{Cli, Command};
use context::Context;
use exit::{CliResult, Exit};
use std::process::ExitCode;

fn main() -> ExitCode {
    allocator::tune();
    // Everything kbackup creates is private to its user: a local repository (key slots,
    // packs), manifests written with --output-dir, downloads. A restore sets each entry's
    // own mode explicitly.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version are not errors; a bad flag or value is a user error (1).
            let _ = error.print();
            return if error.use_stderr() {
                Exit::UserError.into()
            } else {
                Exit::Success.into()
            };
        }
    };
    init_logging(&cli.global);
    let runtime = match runtime_for(&cli.command).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return Exit::Unexpected.into();
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(exit) => exit.into(),
        Err(error) => {
            eprintln!("error: {:#}", error.error);
            error.exit.into()
        }
    }
}

/// The async runtime a command runs on. A cluster restore or backup waits on the API server
/// and has little to compute: one thread, so no wakeup crosses threads (measured on 10,000
/// objects: a third less CPU, left to the API server on a small machine). Everything else
/// (repositories: hashing, reading, object stores) gets a thread per core, and two blocking
/// threads per core and two more (enough to keep the cores busy). Measured before the
/// allocator was tuned ([`allocator`]): each thread allocating megabyte buffers got a glibc
/// arena of its own that kept its memory, so tokio's default of 512 threads cost a tree
/// restore 223 MiB of peak memory instead of 129-137 MiB, and time (more switching, more
/// page faults).
fn runtime_for(command: &Command) -> tokio::runtime::Builder {
    match command {
        Command::Restore {
            target: cli::RestoreCommand::Cluster(_),
        }
        | Command::Backup {
            source: cli::BackupCommand::Cluster(_),
        } => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.max_blocking_threads(2 * cores + 2);
            builder
        }
    }
}

async fn run(cli: Cli) -> CliResult {
    let context = Context::resolve(&cli.global)?;
    match cli.command {
        Command::Version => commands::version::run(&context),
        Command::Completions { shell } => commands::completions::run(shell),
        Command::Rbac {
            command,
            service_account,
        } => commands::rbac::run(&context, command, service_account.as_deref()),
        Command::Storage { action } => commands::storage::run(&context, action).await,
        Command::Repo { action } => commands::repo::repo(&context, action).await,
        Command::Backup { source } => match source {
            cli::BackupCommand::Path(args) => commands::repo::tree::backup(&context, args).await,
            cli::BackupCommand::Stdin(args) => commands::repo::backup_stdin(&context, args).await,
            cli::BackupCommand::Cluster(args) => commands::cluster::backup(&context, args).await,
            cli::BackupCommand::Volumes(args) => commands::volumes::backup(&context, args).await,
        },
        Command::Snapshot { action } => commands::repo::snapshot(&context, action).await,
        Command::Restore { target } => match target {
            cli::RestoreCommand::Path(args) => commands::repo::tree::restore(&context, args).await,
            cli::RestoreCommand::Cluster(args) => commands::cluster::restore(&context, args).await,
            cli::RestoreCommand::Volumes(args) => commands::volumes::restore(&context, args).await,
        },
        Command::Mover { action } => commands::volumes::mover(&context, action).await,
        Command::SessionRun(args) => commands::session_run::session(&context, *args).await,
        Command::RestoreRun(args) => commands::session_run::restore(&context, *args).await,
        Command::RestoreSession { action } => match action {
            cli::RestoreSessionCommand::Create(args) => {
                commands::restore_session::create(&context, *args).await
            }
            cli::RestoreSessionCommand::Wait { name, timeout } => {
                commands::restore_session::wait(&context, &name, timeout).await
            }
        },
        Command::Trigger { what } => match what {
            cli::TriggerCommand::BackupConfiguration { name, session } => {
                commands::trigger::backup_configuration(&context, &name, session.as_deref()).await
            }
        },
        Command::Volumes { action } => match action {
            cli::VolumesCommand::Resume => commands::volumes::resume(&context).await,
        },
        Command::Stackgraph { action } => commands::datastore::stackgraph(&context, action).await,
        Command::StackgraphV2 { action } => {
            commands::datastore::stackgraph_v2(&context, action).await
        }
        Command::Elasticsearch { action } => commands::elasticsearch::run(&context, action).await,
        Command::Settings { action } => commands::datastore::settings(&context, action).await,
        Command::VictoriaMetrics { action } => {
            commands::datastore::victoria_metrics(&context, action).await
        }
    }
}

/// Diagnostics on stderr: warnings by default, more with -v, errors only with -q.
/// `KBACKUP_LOG` (tracing's filter syntax) overrides. kube's own request errors are not
/// shown by default: kbackup reports each failure itself, naming the object.
fn init_logging(global: &cli::GlobalArgs) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error,kube_client=off",
        (false, 0) => "warn,kube_client=off",
        (false, 1) => "info,kbackup=debug",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KBACKUP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
