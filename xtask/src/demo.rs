//! `cargo xtask demo`: the main job on the local test environment, for a newcomer.
//!
//! Today it shows the storage layer end to end: a local file repository and the test MinIO
//! are probed, a StackState-style archive is uploaded to the StackGraph bucket, listed,
//! downloaded and verified. The cluster backup/delete/restore flow joins when the cluster
//! resources engine lands.

use crate::ci::cargo;
use crate::testenv::TestEnv;
use anyhow::{Context, Result, bail};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn run(root: &Path, env: &TestEnv) -> Result<()> {
    env.up()?;
    cargo(root, env, &["build", "--quiet", "-p", "backup-cli"])?;
    let kbackup = target_dir(root).join("debug/kbackup");
    let vars = env.variables()?;
    let endpoint = env.variable("KBACKUP_TEST_S3_ENDPOINT")?;
    let demo = env.root.join("demo");
    let repository = demo.join("repository");
    std::fs::create_dir_all(&repository)?;
    let kb = |args: &[&str]| -> Result<String> {
        eprintln!("\n$ kbackup {}", args.join(" "));
        let output = Command::new(&kbackup)
            .args(args)
            .envs(vars.iter().cloned())
            .env("AWS_ENDPOINT_URL", &endpoint)
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running kbackup")?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        print!("{stdout}");
        if !output.status.success() {
            bail!("kbackup {} failed ({})", args.join(" "), output.status);
        }
        Ok(stdout)
    };

    kb(&[
        "storage",
        "check",
        &format!("file://{}", repository.display()),
    ])?;
    kb(&["storage", "check", "s3://sts-stackgraph-backup"])?;

    let name = format!("sts-backup-{}.graph", chrono_like_stamp());
    let archive = demo.join(&name);
    std::fs::write(&archive, sample_archive(24 * 1024 * 1024))?;
    kb(&[
        "storage",
        "cp",
        &archive.display().to_string(),
        "s3://sts-stackgraph-backup/",
    ])?;
    kb(&["storage", "ls", "s3://sts-stackgraph-backup"])?;
    let restored = demo.join("restored.graph");
    kb(&[
        "storage",
        "cp",
        &format!("s3://sts-stackgraph-backup/{name}"),
        &restored.display().to_string(),
    ])?;
    if std::fs::read(&archive)? != std::fs::read(&restored)? {
        bail!("the downloaded archive differs from the uploaded one");
    }
    // The kbackup repository on local disk: deduplicated, compressed, encrypted, verified.
    let repo_url = format!("file://{}", repository.display());
    let in_repo = |args: &[&str], stdin: Stdio, stdout: Stdio| -> Result<()> {
        eprintln!("\n$ kbackup {} --repo {repo_url}", args.join(" "));
        let status = Command::new(&kbackup)
            .args(args)
            .args(["--repo", &repo_url])
            .env("KBACKUP_PASSWORD", "kbackup-demo-password")
            .stdin(stdin)
            .stdout(stdout)
            .status()
            .context("running kbackup")?;
        if !status.success() {
            bail!("kbackup {} failed ({status})", args.join(" "));
        }
        Ok(())
    };
    if !repository.join("config").exists() {
        in_repo(&["repo", "init"], Stdio::null(), Stdio::inherit())?;
    }
    for _ in 0..2 {
        in_repo(
            &[
                "backup",
                "stdin",
                "--name",
                "stackgraph-archive",
                "--tag",
                "demo",
            ],
            Stdio::from(File::open(&archive)?),
            Stdio::inherit(),
        )?;
    }
    in_repo(&["snapshot", "list"], Stdio::null(), Stdio::inherit())?;
    let from_repository = demo.join("from-repository.graph");
    in_repo(
        &["snapshot", "cat", "latest:stackgraph-archive"],
        Stdio::null(),
        Stdio::from(File::create(&from_repository)?),
    )?;
    if std::fs::read(&archive)? != std::fs::read(&from_repository)? {
        bail!("the archive restored from the repository differs from the original");
    }
    in_repo(
        &["repo", "check", "--read-data"],
        Stdio::null(),
        Stdio::inherit(),
    )?;

    println!(
        "\ndemo: uploaded, listed, downloaded and verified {name} (24 MiB) through the test MinIO"
    );
    println!(
        "demo: backed it up twice into the encrypted repository {repo_url} (the second time adds nothing), restored and verified it, and checked every byte"
    );
    println!(
        "demo: cluster backup -> delete -> restore of a sample application arrives with the cluster-resources engine"
    );
    Ok(())
}

/// The cargo target directory (shared outside the clone in CI).
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// `YYYYMMDD-HHMM` in UTC, as StackState names its archives.
fn chrono_like_stamp() -> String {
    let output = Command::new("date")
        .args(["-u", "+%Y%m%d-%H%M"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    output.unwrap_or_else(|_| "19700101-0000".into())
}

/// Incompressible sample bytes (xorshift).
pub fn sample_archive(size: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(size);
    out
}
