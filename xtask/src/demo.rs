//! `cargo xtask demo`: the main job on the local test environment, for a newcomer. Deploys a
//! sample application (a CRD with a custom resource, configuration, a Secret, RBAC, a
//! Deployment, a NodePort Service, a StatefulSet, a Job) into the test cluster, backs it up into an encrypted
//! kbackup repository on local disk, deletes it, shows the restore plan, restores it, prints
//! the report, clones it into a second namespace, and checks every byte of the repository.
//! Then volume data: a StatefulSet on the real node, its manifests and volumes backed up into
//! the test MinIO through mover pods, deleted, and restored on its data. Then the operator:
//! a storage, a retention policy and a backup configuration declared, a session triggered,
//! run as a Job on the real node, and its Snapshot object written; a deleted ConfigMap
//! restored by a RestoreSession. Then a StackState
//! installation's settings backed up now by its own backup CronJob, and the archive listed.

use crate::ci::cargo;
use crate::testenv::TestEnv;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

const NAMESPACE: &str = "kbackup-demo";
const CRD: &str = "greetings.demo.kbackup.io";
const SAMPLE: &str = include_str!("../demo/sample-app.yaml");
const VOLUMES_NAMESPACE: &str = "kbackup-demo-volumes";
const VOLUMES_APP: &str = include_str!("../demo/volumes-app.yaml");
const OPERATOR_NAMESPACE: &str = "kbackup-demo-operator";
const OPERATOR_APP: &str = include_str!("../demo/operator-app.yaml");
const STACKSTATE_NAMESPACE: &str = "kbackup-demo-stackstate";
const STACKSTATE_APP: &str = include_str!("../demo/stackstate-app.yaml");

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
        let mut command = Command::new(&kbackup);
        command
            .args(["--kubeconfig", &kubeconfig])
            .args(args)
            .env("KBACKUP_PASSWORD", "kbackup-demo-password")
            .env("KBACKUP_REPO", &repo_url);
        shown(command, args)
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
    volumes(root, env)?;
    operator(root, env)?;
    stackstate(root, env)?;

    println!(
        "\ndemo: backed up namespace {NAMESPACE} and its CRD into {repo_url}, deleted them, planned and restored them in dependency order, cloned them beside themselves; the repository checks clean; backed up a StatefulSet's manifests and volumes from the real node into MinIO, deleted them, and brought them back on their data; the operator ran a declared backup of a namespace into MinIO and into a claim, as a Job each, and wrote their Snapshots, with a pre-backup hook run as a Job, then a RestoreSession (made and followed with `kbackup restoresession`) brought a deleted ConfigMap back and a BackupVerifier proved the snapshot restores; a StackState installation's settings were backed up by its own CronJob, listed, and restored by the operator from a RestoreSession (scaled down, its restore Job run, scaled back up)"
    );
    Ok(())
}

/// The volume part: a StatefulSet on the real node writes its notes; its manifests and
/// volumes go into a repository on the test MinIO through mover pods of the kbackup image;
/// the namespace and its volumes are deleted; the whole application comes back, each pod on
/// its own notes.
fn volumes(root: &Path, env: &TestEnv) -> Result<()> {
    eprintln!("\n== volume data: the kbackup image on the real node, for the movers");
    crate::image::run(root, env, None, true)?;
    let kbackup = target_dir(root).join("debug/kbackup");
    let kubectl = env.kubectl()?;
    let kubeconfig = env.variable("KUBECONFIG")?;
    let manifest = env.real_node_manifest(VOLUMES_APP)?;
    let repo_url = format!(
        "s3://{}/kbackup-demo-volumes",
        env.variable("KBACKUP_TEST_S3_BUCKET")?
    );
    let mover_flags = env.real_node_mover_flags()?;
    let credentials = env.s3_client_variables()?;
    let command = |args: &[&str]| {
        let mut command = Command::new(&kbackup);
        command
            .args(["--kubeconfig", &kubeconfig, "-n", VOLUMES_NAMESPACE])
            .args(args)
            .env("KBACKUP_PASSWORD", "kbackup-demo-password")
            .env("KBACKUP_REPO", &repo_url)
            .envs(credentials.iter().map(|(k, v)| (k, v)));
        command
    };
    let kb = |args: &[&str]| shown(command(args), args);
    let notes = || -> Result<String> {
        let rollout = [
            "rollout",
            "status",
            "statefulset/notes",
            "-n",
            VOLUMES_NAMESPACE,
        ];
        kubectl.run(&[&rollout[..], &["--timeout=180s"]].concat())?;
        let mut text = String::new();
        for pod in ["notes-0", "notes-1"] {
            let exec = [
                "exec",
                "-n",
                VOLUMES_NAMESPACE,
                pod,
                "--",
                "cat",
                "/data/notes.txt",
            ];
            text.push_str(&kubectl.run(&exec)?);
        }
        eprintln!("\n$ kubectl exec notes-0|notes-1 -- cat /data/notes.txt\n{text}");
        Ok(text)
    };
    let delete = || {
        let delete = ["delete", "namespace", VOLUMES_NAMESPACE, "--wait=true"];
        kubectl.run(&[&delete[..], &["--timeout=180s"]].concat())
    };
    eprintln!("\n== a StatefulSet on the real node writes its notes to its claims");
    kubectl.apply(&manifest)?;
    let written = notes()?;
    let exists = command(&["repo", "info"])
        .output()
        .context("running kbackup")?;
    if !exists.status.success() {
        kb(&["repo", "init"])?;
    }
    eprintln!("\n== the least privilege the volume movers need (docs/rbac.md)");
    kb(&["rbac", "volumes"])?;
    eprintln!(
        "\n== backing up its manifests and volumes, in one snapshot (mover pods beside the volumes)"
    );
    kb(&[
        "backup",
        "cluster",
        "--include-namespaces",
        VOLUMES_NAMESPACE,
        "--include-volumes",
        &mover_flags[0],
        &mover_flags[1],
        "--tag",
        "demo",
    ])?;
    kb(&["snapshot", "describe", "latest"])?;
    eprintln!("\n== deleting the namespace and its volumes");
    delete()?;
    eprintln!(
        "\n== restoring the application: claims first, filled from the snapshot, then the StatefulSet"
    );
    let restore = [
        "restore",
        "cluster",
        "latest",
        "--tag",
        "demo",
        "--include-volumes",
    ];
    let flags: Vec<&str> = mover_flags.iter().map(String::as_str).collect();
    kb(&[&restore[..], &flags].concat())?;
    let restored = notes()?;
    if restored != written {
        bail!("the restored notes differ:\n{written}\nnow:\n{restored}");
    }
    eprintln!("each pod found its own notes as it wrote them");
    delete()?;
    Ok(())
}

/// The operator part: its definitions applied, a namespace's backup declared (a storage on
/// the test MinIO, one on a claim, a retention policy, a configuration writing to both), the
/// operator started, a session triggered with `kbackup trigger`, run as a Job per repository
/// on the real node, and its objects shown; a ConfigMap deleted and restored by a
/// RestoreSession made with `kbackup restoresession create --wait`.
fn operator(root: &Path, env: &TestEnv) -> Result<()> {
    eprintln!(
        "\n== the operator (docs/operator.md): a namespace's backup declared into MinIO and a claim, a session run as a Job per repository"
    );
    let kubectl = env.kubectl()?;
    let kubeconfig = env.variable("KUBECONFIG")?;
    let crds = root.join("charts/kbackup/crds/kbackup.io.yaml");
    let crds = crds.display().to_string();
    kubectl.run(&["apply", "--server-side", "--force-conflicts", "-f", &crds])?;
    kubectl.run(&[
        "wait",
        "--for=condition=Established",
        "crd/backupsessions.kbackup.io",
        "--timeout=60s",
    ])?;
    let port = env.variable("KBACKUP_TEST_S3_ENDPOINT")?;
    let port = port.rsplit(':').next().unwrap_or_default();
    let endpoint = format!("http://{}:{port}", env.variable("KBACKUP_TEST_NODE_IP")?);
    kubectl.apply(
        &OPERATOR_APP
            .replace("@KEY@", &env.variable("AWS_ACCESS_KEY_ID")?)
            .replace("@SECRET@", &env.variable("AWS_SECRET_ACCESS_KEY")?)
            .replace("@ENDPOINT@", &endpoint)
            .replace("@BUCKET@", &env.variable("KBACKUP_TEST_S3_BUCKET")?)
            .replace(
                "@STORAGE_CLASS@",
                &env.variable("KBACKUP_TEST_STORAGE_CLASS")?,
            )
            .replace("@TOOLBOX@", &env.variable("KBACKUP_TEST_TOOLBOX_IMAGE")?),
    )?;
    let mut operator = start_operator(root, env, OPERATOR_NAMESPACE)?;
    let ran = (|| -> Result<()> {
        // A field of an object of the namespace (empty when it cannot be read).
        let field = |kind: &str, name: &str, path: &str| {
            kubectl
                .run(&[
                    "get",
                    kind,
                    name,
                    "-n",
                    OPERATOR_NAMESPACE,
                    "-o",
                    &format!("jsonpath={{{path}}}"),
                ])
                .unwrap_or_default()
        };
        let phase = |kind: &str, name: &str| field(kind, name, ".status.phase");
        let wait = |what: &str, done: &dyn Fn() -> bool| -> Result<()> {
            let started = std::time::Instant::now();
            while !done() {
                if started.elapsed() > std::time::Duration::from_secs(180) {
                    bail!("timed out waiting for {what}");
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            Ok(())
        };
        // The claim's is probed by a Job that mounts it, on the real node.
        wait("the storages to be probed Ready", &|| {
            phase("backupstorage", "minio") == "Ready" && phase("backupstorage", "claim") == "Ready"
        })?;
        let mut trigger = Command::new(target_dir(root).join("debug/kbackup"));
        trigger.args(["--kubeconfig", &kubeconfig, "-n", OPERATOR_NAMESPACE]);
        let args = ["trigger", "backupconfiguration", "demo"];
        trigger.args(args);
        let made = trigger.output().context("running kbackup trigger")?;
        eprintln!("\n$ kbackup -n {OPERATOR_NAMESPACE} {}", args.join(" "));
        let made = String::from_utf8_lossy(&made.stdout).into_owned();
        print!("{made}");
        let session = made
            .split_whitespace()
            .find(|w| w.starts_with("demo-nightly-"))
            .context("the session kbackup trigger made")?
            .to_owned();
        wait("the session to end", &|| {
            matches!(
                phase("backupsession", &session).as_str(),
                "Succeeded" | "Failed"
            )
        })?;
        let what = "backupstorages,backupconfigurations,backupsessions,snapshots,repositories";
        eprintln!("\n$ kubectl get {what} -n {OPERATOR_NAMESPACE}");
        print!("{}", kubectl.run(&["get", what, "-n", OPERATOR_NAMESPACE])?);
        if phase("backupsession", &session) != "Succeeded" {
            bail!("session {session} failed");
        }
        // Lost, then restored by a RestoreSession made and followed with the CLI.
        kubectl.run(&["delete", "configmap", "settings", "-n", OPERATOR_NAMESPACE])?;
        let args = [
            "restoresession",
            "create",
            "back",
            "--target",
            &format!("namespace/{OPERATOR_NAMESPACE}"),
            "--repository",
            "demo",
            "--wait",
        ];
        eprintln!("\n$ kubectl delete configmap settings -n {OPERATOR_NAMESPACE}");
        eprintln!("$ kbackup -n {OPERATOR_NAMESPACE} {}", args.join(" "));
        let restored = Command::new(target_dir(root).join("debug/kbackup"))
            .args(["--kubeconfig", &kubeconfig, "-n", OPERATOR_NAMESPACE])
            .args(args)
            .output()
            .context("running kbackup restoresession")?;
        eprint!("{}", String::from_utf8_lossy(&restored.stderr));
        print!("{}", String::from_utf8_lossy(&restored.stdout));
        if !restored.status.success() {
            bail!("the RestoreSession did not succeed");
        }
        let colour = kubectl.run(&[
            "get",
            "configmap",
            "settings",
            "-n",
            OPERATOR_NAMESPACE,
            "-o",
            "jsonpath={.data.colour}",
        ])?;
        if colour.trim() != "blue" {
            bail!("the ConfigMap was not restored as it was: {colour}");
        }
        eprintln!("\n$ kubectl get restoresessions -n {OPERATOR_NAMESPACE}");
        print!(
            "{}",
            kubectl.run(&["get", "restoresessions", "-n", OPERATOR_NAMESPACE])?
        );
        let hooks = field("backupsession", &session, ".status.hooks");
        eprintln!("\nthe session's hooks (a Job of the toolbox image before it): {hooks}");
        // Proof that the backup restores: a BackupVerifier restores it into a scratch
        // namespace, reads it back and records the verdict on the Snapshot.
        eprintln!("\n== a BackupVerifier proves the snapshot restores");
        kubectl.apply(&format!(
            "apiVersion: kbackup.io/v1alpha1
kind: BackupVerifier
metadata: {{name: proof, namespace: {OPERATOR_NAMESPACE}}}
spec: {{repository: demo, timeout: 5m}}
"
        ))?;
        let result = || field("backupverifier", "proof", ".status.lastVerification.result");
        wait("the verification to end", &|| !result().is_empty())?;
        eprintln!("\n$ kubectl get backupverifiers,snapshots -n {OPERATOR_NAMESPACE}");
        print!(
            "{}",
            kubectl.run(&["get", "backupverifiers,snapshots", "-n", OPERATOR_NAMESPACE])?
        );
        let evidence = field(
            "backupverifier",
            "proof",
            ".status.lastVerification.evidence",
        );
        eprintln!("the evidence: {evidence}");
        if result() != "Verified" {
            bail!("the snapshot was not verified: {evidence}");
        }
        Ok(())
    })();
    let _ = operator.kill();
    let _ = operator.wait();
    kubectl.run(&[
        "delete",
        "namespace",
        OPERATOR_NAMESPACE,
        "--wait=true",
        "--timeout=120s",
    ])?;
    ran
}

/// The StackState part: an installation's backup configuration and settings backup CronJob
/// (its Job runs on the real node and uploads an archive to the test MinIO); `kbackup
/// settings backup` runs the CronJob now and reports the archive, `settings list` shows it;
/// then the operator restores that archive from a RestoreSession made and followed by
/// `kbackup restoresession create --wait` (the settings API scaled down while the
/// installation's own restore Job runs on a simulated node, then scaled back up).
fn stackstate(root: &Path, env: &TestEnv) -> Result<()> {
    eprintln!("\n== a StackState installation's settings backed up now, by its own backup CronJob");
    let kubectl = env.kubectl()?;
    let kubeconfig = env.variable("KUBECONFIG")?;
    let now = chrono::Utc::now();
    let prefix = format!("demo-{}", now.format("%Y%m%d%H%M%S"));
    kubectl.apply(
        &STACKSTATE_APP
            .replace("@KEY@", &env.variable("AWS_ACCESS_KEY_ID")?)
            .replace("@SECRET@", &env.variable("AWS_SECRET_ACCESS_KEY")?)
            .replace("@PREFIX@", &prefix)
            .replace("@TIME@", &now.format("%Y%m%d-%H%M").to_string())
            .replace("@NODE@", &env.variable("KBACKUP_TEST_NODE_NAME")?)
            .replace("@TAINT@", &env.variable("KBACKUP_TEST_NODE_TAINT")?)
            .replace("@IMAGE@", &env.variable("KBACKUP_TEST_KBACKUP_IMAGE")?)
            .replace(
                "@POD_ENDPOINT@",
                &env.variable("KBACKUP_TEST_POD_S3_ENDPOINT")?,
            ),
    )?;
    // This machine reaches MinIO straight; the installation's Service has no pod here.
    let endpoint = env.variable("KBACKUP_TEST_S3_ENDPOINT")?;
    let kb = |args: &[&str]| -> Result<()> {
        let mut command = Command::new(target_dir(root).join("debug/kbackup"));
        command
            .args(["--kubeconfig", &kubeconfig, "-n", STACKSTATE_NAMESPACE])
            .args(args)
            .env("KBACKUP_STORAGE_ENDPOINT", &endpoint);
        shown(command, &[&["-n", STACKSTATE_NAMESPACE], args].concat())
    };
    let ran = kb(&["settings", "backup"]).and_then(|()| kb(&["settings", "list"]));
    let ran = ran.and_then(|()| {
        eprintln!(
            "\n== the operator restores those settings from a RestoreSession: the settings API scaled down, the installation's own restore Job run, scaled back up"
        );
        let mut operator = start_operator(root, env, STACKSTATE_NAMESPACE)?;
        let target = format!("namespace/{STACKSTATE_NAMESPACE}");
        let param = format!("storageEndpoint={endpoint}");
        let restored = kb(&[
            "-y",
            "restoresession",
            "create",
            "settings-back",
            "--target",
            &target,
            "--tasks",
            "settings-restore",
            "--param",
            &param,
            "--wait",
            "--timeout",
            "3m",
        ]);
        let _ = operator.kill();
        let _ = operator.wait();
        restored?;
        eprintln!("\n$ kubectl get restoresessions,deployments -n {STACKSTATE_NAMESPACE}");
        print!(
            "{}",
            kubectl.run(&[
                "get",
                "restoresessions,deployments",
                "-n",
                STACKSTATE_NAMESPACE
            ])?
        );
        Ok(())
    });
    kubectl.run(&[
        "delete",
        "namespace",
        STACKSTATE_NAMESPACE,
        "--wait=true",
        "--timeout=120s",
    ])?;
    ran
}

/// The operator (its release build), watching `namespace`, its Jobs on the real node.
fn start_operator(root: &Path, env: &TestEnv, namespace: &str) -> Result<Child> {
    let node = env.variable("KBACKUP_TEST_NODE_NAME")?;
    Command::new(target_dir(root).join("release/kbackup-operator"))
        .args(["--image", &env.variable("KBACKUP_TEST_KBACKUP_IMAGE")?])
        .args([
            "--metrics-address",
            "127.0.0.1:0",
            "--leader-election=false",
        ])
        .args(["--watch-namespaces", namespace, "--log-level", "warn"])
        .args([
            "--job-node-selector",
            &format!("kubernetes.io/hostname={node}"),
        ])
        .args([
            "--job-toleration",
            &env.variable("KBACKUP_TEST_NODE_TAINT")?,
        ])
        .env("KUBECONFIG", env.variable("KUBECONFIG")?)
        .spawn()
        .context("starting kbackup-operator")
}

/// Runs kbackup as `command` says, showing `args` as a person would type them.
fn shown(mut command: Command, args: &[&str]) -> Result<()> {
    eprintln!("\n$ kbackup {}", args.join(" "));
    let status = command.status().context("running kbackup")?;
    if !status.success() {
        bail!("kbackup {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The cargo target directory (shared outside the clone in CI).
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}
