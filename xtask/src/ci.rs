//! `cargo xtask ci`: the whole check, as CI runs it.

use crate::testenv::TestEnv;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Runs a cargo command in the workspace with the test environment's variables.
pub fn cargo(root: &Path, env: &TestEnv, args: &[&str]) -> Result<()> {
    let started = Instant::now();
    eprintln!("\n==> cargo {}", args.join(" "));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(root)
        .envs(env.variables().unwrap_or_default())
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    eprintln!(
        "<== cargo {} took {:.0}s",
        args[0],
        started.elapsed().as_secs_f64()
    );
    if !status.success() {
        bail!("cargo {} failed", args.join(" "));
    }
    Ok(())
}

/// Builds the release `kbackup` and returns its path.
pub fn release_kbackup(root: &Path, env: &TestEnv) -> Result<PathBuf> {
    cargo(
        root,
        env,
        &[
            "build",
            "--release",
            "--quiet",
            "-p",
            "backup-cli",
            "-p",
            "backup-operator",
        ],
    )?;
    Ok(crate::demo::target_dir(root).join("release/kbackup"))
}

/// How long CI fuzzes each target: a short run from the kept corpus, so that a decoder
/// change that panics on a known input fails CI (the long runs are `cargo xtask fuzz`).
const FUZZ_SECONDS: u32 = 15;

pub fn run(root: &Path, env: &TestEnv, keep_env: bool) -> Result<()> {
    let started = Instant::now();
    let result = checks(root, env);
    if !keep_env {
        env.down(false)?;
    }
    result?;
    eprintln!(
        "\nci: all checks passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn checks(root: &Path, env: &TestEnv) -> Result<()> {
    env.up()?;
    cargo(root, env, &["fmt", "--all", "--check"])?;
    cargo(
        root,
        env,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // The tests run kbackup in pods on the real node, from the image of this commit.
    crate::image::check(root, env)?;
    crate::image::run(root, env, None, true)?;
    cargo(root, env, &["test", "--workspace", "--no-fail-fast"])?;
    crate::fuzz::run(root, &[], FUZZ_SECONDS)?;
    let minio = env.variable("KBACKUP_TEST_S3_BUCKET")?;
    example(root, env, "storage_list", &[&format!("s3://{minio}")])?;
    cluster_clone(root, env)
}

/// Runs one of the examples.
fn example(root: &Path, env: &TestEnv, name: &str, args: &[&str]) -> Result<()> {
    let mut command = vec![
        "run",
        "--quiet",
        "-p",
        "kbackup-examples",
        "--example",
        name,
    ];
    command.push("--");
    command.extend(args);
    cargo(root, env, &command)
}

/// The use cases embedded without the CLI: `examples/cluster_clone.rs` copies a namespace
/// through a new repository, and the copy must hold the original's ConfigMap.
fn cluster_clone(root: &Path, env: &TestEnv) -> Result<()> {
    let kubectl = env.kubectl()?;
    let (from, to) = ("example-clone-from", "example-clone-to");
    for namespace in [from, to] {
        kubectl.quiet(&[
            "delete",
            "namespace",
            namespace,
            "--ignore-not-found",
            "--wait",
        ]);
    }
    kubectl.run(&["create", "namespace", from])?;
    kubectl.run(&[
        "create",
        "configmap",
        "settings",
        "-n",
        from,
        "--from-literal=mode=copied",
    ])?;
    let repository = tempfile::tempdir()?;
    let directory = repository.path().join("repository");
    let directory = directory.display().to_string();
    example(root, env, "cluster_clone", &[from, to, &directory])?;
    let copied = kubectl.run(&[
        "get",
        "configmap",
        "settings",
        "-n",
        to,
        "-o",
        "jsonpath={.data.mode}",
    ])?;
    for namespace in [from, to] {
        kubectl.quiet(&["delete", "namespace", namespace, "--ignore-not-found"]);
    }
    if copied.trim() != "copied" {
        bail!("the example's copy of the ConfigMap holds {copied:?}");
    }
    Ok(())
}
