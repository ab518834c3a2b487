//! Development tasks for kbackup: `cargo xtask env up|down|status`, `cargo xtask ci`,
//! `cargo xtask demo`, `cargo xtask fuzz`, `cargo xtask image`, `cargo xtask bench storage`.

mod bench;
mod ci;
mod command;
mod demo;
mod fuzz;
mod image;
mod testenv;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use testenv::TestEnv;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "kbackup development tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// The local test servers (Kubernetes + kwok, MinIO, Azurite, Elasticsearch).
    Env {
        #[command(subcommand)]
        action: EnvAction,
    },
    /// Everything CI checks: env up, fmt, clippy, every test, a short fuzz run of every
    /// target, the examples, the container image (reproducible, runs), env down.
    Ci {
        /// Leave the test servers running afterwards.
        #[arg(long)]
        keep_env: bool,
    },
    /// The main job on the local test environment, for a newcomer.
    Demo,
    /// The fuzz targets of every decoder of stored bytes (nightly toolchain, cargo-fuzz).
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u32,
        /// Targets to run (default: all).
        targets: Vec<String>,
    },
    /// The kbackup container image: an OCI archive from the release binary, no base image,
    /// reproducible (prints its path and manifest digest).
    Image {
        /// Where to write it (default: <target>/image/kbackup-<version>.oci.tar).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Also build it a second time (the bytes must be identical) and run `kbackup
        /// version` in its unpacked root file system as its user (needs root, for chroot).
        #[arg(long)]
        check: bool,
        /// Also import it into the test environment's real node (`cargo xtask env up` first),
        /// where tests run it.
        #[arg(long)]
        load: bool,
    },
    /// Benchmarks, side by side with the tool a user would otherwise use.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
}

#[derive(Subcommand)]
enum EnvAction {
    /// Build (first time) and start every server not running; write .testenv/env.sh.
    Up,
    /// Stop every server.
    Down {
        /// Also delete .testenv/ (data, logs, certificates).
        #[arg(long)]
        purge: bool,
    },
    /// Show which servers run.
    Status,
}

/// The workspace root: the nearest directory above the working directory whose Cargo.toml
/// declares `[workspace]`. Found at run time: a compile-time path would name another clone
/// when a target directory is shared between clones (as CI does).
fn workspace_root() -> Result<PathBuf> {
    let start = std::env::current_dir()?;
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|text| text.contains("[workspace]"))
        })
        .map(PathBuf::from)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no Cargo workspace above {}; run cargo xtask inside the kbackup clone",
                start.display()
            )
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> Result<()> {
    let root = workspace_root()?;
    let env = TestEnv::new(&root);
    match task {
        Task::Env {
            action: EnvAction::Up,
        } => env.up(),
        Task::Env {
            action: EnvAction::Down { purge },
        } => env.down(purge),
        Task::Env {
            action: EnvAction::Status,
        } => env.status(),
        Task::Ci { keep_env } => ci::run(&root, &env, keep_env),
        Task::Demo => demo::run(&root, &env),
        Task::Fuzz { seconds, targets } => fuzz::run(&root, &targets, seconds),
        Task::Image {
            output,
            check,
            load,
        } => {
            if check {
                image::check(&root, &env)?;
            }
            image::run(&root, &env, output, load)
        }
        Task::Bench { which } => bench::run(&root, &env, which),
    }
}
