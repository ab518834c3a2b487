//! `cargo xtask bench cluster`: 10,000 objects (ConfigMaps, Secrets, Deployments over 100
//! namespaces) on the local control plane. Backup beside the raw paginated LIST calls of the
//! same kinds (the floor, curl with the admin certificate) and `kubectl get -A -o yaml`;
//! restore into an empty cluster beside `kubectl apply --server-side -f` of the same objects.

use super::{Sample, median, timed, write_section};
use crate::testenv::TestEnv;
use anyhow::{Result, bail};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const PREFIX: &str = "kbackup-bench";
const NAMESPACES: usize = 100;
const PER_NAMESPACE: [(&str, usize); 3] = [("ConfigMap", 50), ("Secret", 40), ("Deployment", 10)];
const KINDS: [(&str, &str); 3] = [
    ("/api/v1/configmaps", "configmaps"),
    ("/api/v1/secrets", "secrets"),
    ("/apis/apps/v1/deployments", "deployments"),
];

fn objects() -> String {
    let mut docs = Vec::new();
    for n in 0..NAMESPACES {
        let ns = format!("{PREFIX}-{n:03}");
        docs.push(format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}"
        ));
        for (kind, count) in PER_NAMESPACE {
            for i in 0..count {
                docs.push(match kind {
                    "ConfigMap" => format!(
                        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\n  namespace: {ns}\n  labels: {{app: bench}}\ndata:\n  setting: \"value-{n}-{i}\"\n  feature: \"on\""
                    ),
                    "Secret" => format!(
                        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret-{i}\n  namespace: {ns}\nstringData:\n  token: \"token-{n}-{i}\""
                    ),
                    _ => format!(
                        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: {ns}\nspec:\n  replicas: 0\n  selector: {{matchLabels: {{app: app-{i}}}}}\n  template:\n    metadata: {{labels: {{app: app-{i}}}}}\n    spec: {{containers: [{{name: c, image: nginx}}]}}"
                    ),
                });
            }
        }
    }
    docs.join("\n---\n")
}

fn delete_namespaces(kubectl: &crate::testenv::Kubectl) -> Result<()> {
    let names: Vec<String> = (0..NAMESPACES)
        .map(|n| format!("namespace/{PREFIX}-{n:03}"))
        .collect();
    let mut args = vec![
        "delete",
        "--ignore-not-found",
        "--wait=true",
        "--timeout=600s",
    ];
    args.extend(names.iter().map(String::as_str));
    kubectl.run(&args)?;
    Ok(())
}

/// Every page of the three kinds, one after the other, as a client with no work to do on
/// the objects would fetch them.
fn raw_lists(env: &TestEnv) -> Result<Sample> {
    let pki = env.root.join("pki");
    let started = Instant::now();
    for (path, _) in KINDS {
        let mut token = String::new();
        loop {
            let url = format!("https://127.0.0.1:26443{path}?limit=500{token}");
            // A user agent other than curl's: the API server pretty-prints for curl.
            let output = Command::new("curl")
                .args(["-sS", "--fail", "-A", "kbackup-bench", "--cacert"])
                .arg(pki.join("ca.crt"))
                .arg("--cert")
                .arg(pki.join("admin.crt"))
                .arg("--key")
                .arg(pki.join("admin.key"))
                .arg(&url)
                .output()?;
            if !output.status.success() {
                bail!("curl {url}: {}", String::from_utf8_lossy(&output.stderr));
            }
            let text = String::from_utf8_lossy(&output.stdout);
            match continue_token(&text) {
                Some(next) => token = format!("&continue={next}"),
                None => break,
            }
        }
    }
    Ok(Sample {
        seconds: started.elapsed().as_secs_f64(),
        max_rss_mib: 0.0,
    })
}

/// The list's `metadata.continue`, when there is a next page.
fn continue_token(list: &str) -> Option<&str> {
    let after = list.split("\"continue\"").nth(1)?;
    let value = after
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let token = value.split('"').next()?;
    (!token.is_empty()).then_some(token)
}

pub fn run(root: &Path, env: &TestEnv, rounds: usize) -> Result<()> {
    let kbackup = super::release_kbackup(root, env)?;
    let kubectl = env.kubectl()?;
    let kubeconfig = env.variable("KUBECONFIG")?;
    let dir = env.root.join("bench/cluster");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir)?;
    let manifest = dir.join("objects.yaml");
    std::fs::write(&manifest, objects())?;
    let repo = dir.join("repository");
    let kb = |args: &[&str]| {
        let mut command = Command::new(&kbackup);
        command
            .args(["-q", "--no-progress", "--kubeconfig", &kubeconfig])
            .args(args)
            .env("KBACKUP_PASSWORD", "bench")
            .env("KBACKUP_REPO", &repo)
            .stdout(Stdio::null());
        command
    };
    if !kb(&["repo", "init"]).status()?.success() {
        bail!("repo init failed");
    }
    eprintln!("deleting earlier bench namespaces");
    delete_namespaces(&kubectl)?;

    eprintln!(
        "kubectl apply --server-side of {} objects into an empty cluster",
        NAMESPACES * 101
    );
    let mut apply = Command::new(&kubectl.bin);
    apply
        .args(["--kubeconfig", &kubeconfig, "apply", "--server-side", "-f"])
        .arg(&manifest);
    let kubectl_apply = timed(apply, "kubectl apply --server-side")?;
    eprintln!("  {:.1}s", kubectl_apply.seconds);

    let include = format!("{PREFIX}-*");
    let backup_args = [
        "backup",
        "cluster",
        "--include-namespaces",
        &include,
        "--include-resources",
        "configmaps,secrets,deployments.apps",
    ];
    let (mut floor, mut get, mut ours) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        floor.push(raw_lists(env)?);
        let mut get_all = Command::new(&kubectl.bin);
        get_all.args([
            "--kubeconfig",
            &kubeconfig,
            "get",
            "-A",
            "-o",
            "yaml",
            "configmaps,secrets,deployments",
        ]);
        get.push(timed(get_all, "kubectl get -A -o yaml")?);
        ours.push(timed(kb(&backup_args), "kbackup backup cluster")?);
        eprintln!(
            "round {}/{rounds}: raw LISTs {:.2}s, kubectl get {:.2}s, kbackup backup {:.2}s ({:.0} MiB)",
            round + 1,
            floor[round].seconds,
            get[round].seconds,
            ours[round].seconds,
            ours[round].max_rss_mib
        );
    }

    let mut restores = Vec::new();
    for round in 0..rounds {
        eprintln!(
            "round {}/{rounds}: deleting the namespaces, then restoring the latest snapshot into the empty cluster",
            round + 1
        );
        delete_namespaces(&kubectl)?;
        let restore = timed(
            kb(&["restore", "cluster", "latest"]),
            "kbackup restore cluster",
        )?;
        eprintln!("  {:.1}s ({:.0} MiB)", restore.seconds, restore.max_rss_mib);
        // The ConfigMaps carry a label: all of them must be back.
        let back = kubectl.run(&["get", "configmaps", "-A", "--no-headers", "-l", "app=bench"])?;
        let expected = NAMESPACES * PER_NAMESPACE[0].1;
        if back.lines().count() != expected {
            bail!(
                "the restore brought back {} of {expected} labelled ConfigMaps",
                back.lines().count()
            );
        }
        restores.push(restore);
    }
    delete_namespaces(&kubectl)?;

    let (floor, get, ours) = (median(&floor), median(&get), median(&ours));
    let restore = median(&restores);
    let mut table = String::new();
    writeln!(
        table,
        "| {} objects in {NAMESPACES} namespaces | seconds | peak RSS | ratio |",
        NAMESPACES * 100
    )?;
    writeln!(table, "|---|---|---|---|")?;
    writeln!(
        table,
        "| raw paginated LISTs of the 3 kinds (curl, the floor) | {:.2} | - | 1.00 |",
        floor.seconds
    )?;
    writeln!(
        table,
        "| `kubectl get -A -o yaml configmaps,secrets,deployments` | {:.2} | - | {:.2} |",
        get.seconds,
        get.seconds / floor.seconds
    )?;
    writeln!(
        table,
        "| **`kbackup backup cluster`** (LIST, clean, checksum, chunk, compress, encrypt, write) | **{:.2}** | {:.0} MiB | **{:.2}** |",
        ours.seconds,
        ours.max_rss_mib,
        ours.seconds / floor.seconds
    )?;
    writeln!(
        table,
        "| `kubectl apply --server-side -f` into an empty cluster | {:.2} | - | 1.00 |",
        kubectl_apply.seconds
    )?;
    writeln!(
        table,
        "| **`kbackup restore cluster latest`** into an empty cluster (verify, plan, waves) | **{:.2}** | {:.0} MiB | **{:.2}x faster** |",
        restore.seconds,
        restore.max_rss_mib,
        kubectl_apply.seconds / restore.seconds
    )?;
    let section = format!(
        "## Cluster resources\n\n`cargo xtask bench cluster --rounds {rounds}` on the local control plane (etcd, kube-apiserver, \
         2 cores shared with the benchmark): {NAMESPACES} namespaces x (50 ConfigMaps, 40 Secrets, 10 Deployments). Backup rounds \
         alternate the three readers (median); kubectl apply runs once, kbackup's restore once per round (median), each into \
         an empty cluster (the namespaces deleted before each). Goals: backup at most 1.2x the raw LISTs and below kubectl get; restore at least 5x faster than kubectl \
         apply --server-side.\n\n{table}"
    );
    println!("{section}");
    write_section(&root.join("docs/benchmarks.md"), "cluster", &section)?;
    Ok(())
}
