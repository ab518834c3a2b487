//! `cargo xtask demo`: the main job on the local test environment, for a newcomer. Deploys a
//! sample application (a CRD with a custom resource, configuration, a Secret, RBAC, a
//! Deployment, a NodePort Service, a StatefulSet, a Job) into the test cluster, backs it up into an encrypted
//! kbackup repository on local disk, deletes it, shows the restore plan, restores it, prints
//! the report, clones it into a second namespace, and checks every byte of the repository.

use crate::ci::cargo;
use crate::testenv::TestEnv;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const NAMESPACE: &str = "kbackup-demo";
const CRD: &str = "greetings.demo.kbackup.io";
const SAMPLE: &str = include_str!("../demo/sample-app.yaml");

pub fn run(root: &Path, env: &TestEnv) -> Result<()> {
    env.up()?;
    cargo(root, env, &["build", "--quiet", "-p", "backup-cli"])?;
    let kbackup = target_dir(root).join("debug/kbackup");
    let kubectl = env.kubectl()?;
    let kubeconfig = env.variable("KUBECONFIG")?;
    let repository = env.root.join("demo/repository");
    std::fs::create_dir_all(&repository)?;
    let repo_url = format!("file://{}", repository.display());
    let kb = |args: &[&str]| -> Result<()> {
        eprintln!("\n$ kbackup {}", args.join(" "));
        let status = Command::new(&kbackup)
            .args(["--kubeconfig", &kubeconfig])
            .args(args)
            .env("KBACKUP_PASSWORD", "kbackup-demo-password")
            .env("KBACKUP_REPO", &repo_url)
            .status()
            .context("running kbackup")?;
        if !status.success() {
            bail!("kbackup {} failed ({status})", args.join(" "));
        }
        Ok(())
    };
    let show = |what: &str| -> Result<()> {
        eprintln!("\n$ kubectl get {what} -n {NAMESPACE}");
        print!("{}", kubectl.run(&["get", what, "-n", NAMESPACE])?);
        Ok(())
    };

    // Waits for the application to be up, then lists it.
    let show_running = || -> Result<()> {
        let rollout = ["rollout", "status", "deployment/web", "-n", NAMESPACE];
        kubectl.run(&[&rollout[..], &["--timeout=120s"]].concat())?;
        show("deployments,statefulsets,jobs,services,configmaps,secrets,greetings")
    };
    eprintln!("\n== deploying the sample application into namespace {NAMESPACE}");
    // The CRD first: its custom resource can only be applied once it is established.
    let (crd, rest) = SAMPLE.split_once("\n---\n").context("sample manifest")?;
    kubectl.apply(crd)?;
    kubectl.run(&[
        "wait",
        "--for=condition=Established",
        &format!("crd/{CRD}"),
        "--timeout=60s",
    ])?;
    kubectl.apply(rest)?;
    show_running()?;

    if !repository.join("config").exists() {
        kb(&["repo", "init"])?;
    }
    eprintln!("\n== the least privilege a cluster backup needs (docs/rbac.md)");
    kb(&["rbac", "backup-cluster"])?;
    eprintln!("\n== backing it up");
    kb(&[
        "backup",
        "cluster",
        "--include-namespaces",
        NAMESPACE,
        "--tag",
        "demo",
    ])?;
    kb(&["snapshot", "describe", "latest"])?;

    eprintln!("\n== deleting it (namespace and CRD)");
    kubectl.run(&[
        "delete",
        "namespace",
        NAMESPACE,
        "--wait=true",
        "--timeout=120s",
    ])?;
    kubectl.run(&["delete", "crd", CRD, "--wait=true", "--timeout=60s"])?;

    eprintln!("\n== the restore plan, diffed against the live cluster");
    kb(&["restore", "cluster", "latest", "--dry-run"])?;
    eprintln!("\n== restoring");
    kb(&["restore", "cluster", "latest"])?;
    show_running()?;
    eprintln!(
        "\n== the report, shaped like a KubeStash RestoreSession status (a second restore: everything is unchanged)"
    );
    kb(&["-o", "yaml", "restore", "cluster", "latest"])?;

    let copy = format!("{NAMESPACE}-copy");
    let mapping = format!("{NAMESPACE}:{copy}");
    eprintln!(
        "\n== a clone beside the original: node ports dropped (the original holds them), the Job restored without its generated selector"
    );
    let clone = [
        "restore",
        "cluster",
        "latest",
        "--namespace-mapping",
        &mapping,
    ];
    kb(&[&clone[..], &["--dry-run"]].concat())?;
    kb(&clone)?;
    eprintln!("\n$ kubectl get services,jobs -n {copy}");
    print!("{}", kubectl.run(&["get", "services,jobs", "-n", &copy])?);
    kubectl.run(&[
        "delete",
        "namespace",
        &copy,
        "--wait=true",
        "--timeout=120s",
    ])?;
    kb(&["repo", "check", "--read-data"])?;

    println!(
        "\ndemo: backed up namespace {NAMESPACE} and its CRD into {repo_url}, deleted them, planned and restored them in dependency order, cloned them beside themselves; the repository checks clean"
    );
    Ok(())
}

/// The cargo target directory (shared outside the clone in CI).
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}
