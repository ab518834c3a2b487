//! `cargo xtask bench stackgraph`: the orchestration overhead of one StackGraph restore
//! (scale-down, objects and Job created, Job seen done, scale-up, clean-up) on a simulated
//! installation whose restore Job kwok completes after a fixed 1 s, reported apart, so the
//! overhead measured is kbackup's own. Goal: at most 5 s.

use super::write_section;
use crate::testenv::{MINIO_PASSWORD, MINIO_USER, TestEnv};
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const NAMESPACE: &str = "kbackup-bench-stackgraph";
const SELECTOR: &str = "stackstate.com/connects-to-stackgraph";

fn installation() -> String {
    let config = format!(
        "minio:\n  service: {{name: suse-observability-minio, port: 9000}}\n\
         stackgraph:\n  bucket: sts-stackgraph-backup\n  s3Prefix: bench\n  restore:\n    scaleDownLabelSelector: {SELECTOR}=true\n\
         \x20   zookeeperQuorum: suse-observability-zookeeper:2181\n    job:\n      image: restore\n      waitImage: wait\n"
    );
    let secret = format!("minio:\n  accessKey: {MINIO_USER}\n  secretKey: {MINIO_PASSWORD}\n");
    let indent = |text: &str| {
        text.lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut docs = vec![
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: suse-observability-backup-config\n  namespace: {NAMESPACE}\ndata:\n  config: |\n{}",
            indent(&config)
        ),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: suse-observability-backup-config\n  namespace: {NAMESPACE}\nstringData:\n  config: |\n{}",
            indent(&secret)
        ),
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: suse-observability-minio\n  namespace: {NAMESPACE}\nspec:\n  selector: {{app: minio}}\n  ports: [{{port: 9000}}]"
        ),
    ];
    let workloads = [
        ("minio", "Deployment", 1, false),
        ("server", "Deployment", 2, true),
        ("correlate", "Deployment", 2, true),
        ("receiver", "StatefulSet", 1, true),
    ];
    for (name, kind, replicas, labelled) in workloads {
        let labels = if labelled {
            format!("{{{SELECTOR}: \"true\"}}")
        } else {
            "{}".into()
        };
        let service_name = if kind == "StatefulSet" {
            format!("\n  serviceName: {name}")
        } else {
            String::new()
        };
        docs.push(format!(
            "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\n  labels: {labels}\nspec:\n  replicas: {replicas}{service_name}\n\
             \x20 selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n\
             \x20   spec: {{containers: [{{name: c, image: img, ports: [{{containerPort: 9000}}]}}]}}"
        ));
    }
    docs.join("\n---\n")
}

fn volume() -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {NAMESPACE}\nspec:\n  capacity: {{storage: 10Gi}}\n  accessModes: [ReadWriteOnce]\n\
         \x20 storageClassName: \"\"\n  persistentVolumeReclaimPolicy: Delete\n  hostPath: {{path: /tmp/kbackup-bench}}"
    )
}

/// The seconds of the three phases from kbackup's `timings:` line.
fn timings(stderr: &str) -> Option<[f64; 3]> {
    let line = stderr.lines().find_map(|l| l.strip_prefix("timings: "))?;
    let numbers: Vec<f64> = line
        .split(", ")
        .filter_map(|part| part.rsplit(' ').next()?.trim_end_matches('s').parse().ok())
        .collect();
    numbers.try_into().ok()
}

pub fn run(root: &Path, env: &TestEnv, rounds: usize) -> Result<()> {
    let kbackup = super::release_kbackup(root, env)?;
    let kubectl = env.kubectl()?;
    let kubeconfig = env.variable("KUBECONFIG")?;
    let endpoint = env.variable("KBACKUP_TEST_S3_ENDPOINT")?;

    kubectl.run(&[
        "delete",
        "namespace",
        NAMESPACE,
        "--ignore-not-found",
        "--wait=true",
    ])?;
    kubectl.apply(&installation())?;
    let archive = env.root.join("bench/sts-backup-20261121-0300.graph");
    std::fs::create_dir_all(archive.parent().context("bench dir")?)?;
    std::fs::write(&archive, vec![1u8; 1 << 20])?;
    let upload = Command::new(&kbackup)
        .args(["-q", "--no-progress", "storage", "cp"])
        .arg(&archive)
        .arg("s3://sts-stackgraph-backup/bench/")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", MINIO_USER)
        .env("AWS_SECRET_ACCESS_KEY", MINIO_PASSWORD)
        .status()?;
    if !upload.success() {
        bail!("uploading the benchmark archive failed");
    }

    let mut samples: Vec<(f64, [f64; 3])> = Vec::new();
    for round in 0..rounds {
        kubectl.apply(&volume())?;
        kubectl.run(&[
            "wait",
            "--for=condition=Available",
            "deployment",
            "--all",
            "-n",
            NAMESPACE,
            "--timeout=60s",
        ])?;
        let started = Instant::now();
        let output = Command::new(&kbackup)
            .args([
                "-y",
                "--no-progress",
                "--kubeconfig",
                &kubeconfig,
                "-n",
                NAMESPACE,
                "stackgraph",
                "restore",
                "--latest",
            ])
            .output()?;
        let total = started.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            bail!("restore {round} failed:\n{stderr}");
        }
        let phases = timings(&stderr).with_context(|| format!("no timings line in:\n{stderr}"))?;
        eprintln!(
            "round {}/{rounds}: {total:.2}s (setup {:.2}s, job {:.2}s, finalize {:.2}s)",
            round + 1,
            phases[0],
            phases[1],
            phases[2]
        );
        samples.push((total, phases));
        kubectl
            .run(&[
                "wait",
                "--for=delete",
                &format!("pv/{NAMESPACE}"),
                "--timeout=60s",
            ])
            .ok();
    }
    kubectl.run(&["delete", "namespace", NAMESPACE, "--wait=false"])?;

    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (total, phases) = samples[samples.len() / 2];
    let overhead = phases[0] + phases[2];
    let mut table = String::new();
    writeln!(table, "| restore (median of {rounds}) | seconds |")?;
    writeln!(table, "|---|---|")?;
    writeln!(
        table,
        "| whole command (config, listing, archive choice, restore) | {total:.2} |"
    )?;
    writeln!(
        table,
        "| scale-down of 3 workloads (5 pods) and setup | {:.2} |",
        phases[0]
    )?;
    writeln!(
        table,
        "| Job created until seen done (PVC binding, scheduling, kwok's fixed 1 s run) | {:.2} |",
        phases[1]
    )?;
    writeln!(table, "| scale-up and clean-up | {:.2} |", phases[2])?;
    writeln!(
        table,
        "| **orchestration overhead (setup + finalize)** | **{overhead:.2}** |"
    )?;
    let section = format!(
        "## StackGraph restore orchestration\n\n`cargo xtask bench stackgraph --rounds {rounds}`: `kbackup stackgraph restore --latest -y` on a \
         simulated installation (local control plane, kwok nodes, MinIO reached through a port-forward). Goal: orchestration \
         overhead at most 5 s. The Go `sts-backup` is not served by the Go module proxy (403), so it cannot be built here to run \
         beside it; by its design it polls every 2 s (pods) and 10 s (Job), so its overhead is at least one 10 s poll once the Job \
         is done, where kbackup watches and reacts at once.\n\n{table}"
    );
    println!("{section}");
    write_section(&root.join("docs/benchmarks.md"), "stackgraph", &section)?;
    eprintln!("written to docs/benchmarks.md");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_timings_line() {
        let stderr = "scaled down: a\ntimings: scale-down and setup 0.41s, job 1.20s, scale-up and clean-up 0.05s\n";
        assert_eq!(timings(stderr), Some([0.41, 1.20, 0.05]));
        assert_eq!(timings("nothing"), None);
    }
}
