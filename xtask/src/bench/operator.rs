//! `cargo xtask bench operator`: the operator's own overhead on the test cluster, measured
//! from watches (millisecond arrival times, not the API's one-second timestamps): from a
//! BackupSession's creation to its Job's creation, and from the Job's completion to the
//! session's status saying Succeeded; and the operator's resident memory at rest and with
//! 100 BackupConfigurations (each with its accounts and CronJob). No other operator runs on
//! this machine to compare with: the figures are set against the targets of the issue
//! (2 s, 2 s, 64 MiB).

use super::write_section;
use crate::testenv::{Kubectl, TestEnv};
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NAMESPACE: &str = "kbackup-bench-operator";
const CONFIGURATIONS: usize = 100;
const WAIT: Duration = Duration::from_secs(180);

/// When each watched event arrived, by `kind/name/what`.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

pub fn run(root: &Path, env: &TestEnv, rounds: usize) -> Result<()> {
    env.up()?;
    crate::image::run(root, env, None, true)?;
    let kbackup = crate::ci::release_kbackup(root, env)?;
    let operator_binary = kbackup.with_file_name("kbackup-operator");
    let kubectl = env.kubectl()?;
    let _ = kubectl.run(&["delete", "namespace", NAMESPACE, "--wait=true"]);
    kubectl.run(&["create", "namespace", NAMESPACE])?;
    kubectl.run(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        &root
            .join("charts/kbackup/crds/kbackup.io.yaml")
            .display()
            .to_string(),
    ])?;
    kubectl.apply(&declarations(env)?)?;
    let mut operator = start_operator(env, &operator_binary)?;
    let result = measure(&kubectl, &mut operator, rounds);
    let _ = operator.kill();
    let _ = operator.wait();
    let _ = kubectl.run(&["delete", "namespace", NAMESPACE, "--wait=false"]);
    let (to_job, to_status, rest_mib, loaded_mib, peak_mib) = result?;
    let section = format!(
        "## Operator overhead (`cargo xtask bench operator --rounds {rounds}`)\n\n\
         Medians of {rounds} sessions (manifests of a small namespace), timed by watches on this machine;\n\
         no other operator runs here, so the figures are set against the issue's targets.\n\n\
         | measure | kbackup-operator | target | ratio |\n|---|---|---|---|\n\
         | BackupSession created → its Job created | {to_job:.3} s | 2 s | {:.2} |\n\
         | Job complete → session status Succeeded (Snapshot written first) | {to_status:.3} s | 2 s | {:.2} |\n\
         | resident memory at rest | {rest_mib:.1} MiB | 64 MiB | {:.2} |\n\
         | resident memory with {CONFIGURATIONS} BackupConfigurations | {loaded_mib:.1} MiB (peak {peak_mib:.1}) | 64 MiB | {:.2} |\n\n",
        to_job / 2.0,
        to_status / 2.0,
        rest_mib / 64.0,
        peak_mib / 64.0,
    );
    print!("{section}");
    write_section(&root.join("docs/benchmarks.md"), "operator", &section)
}

fn declarations(env: &TestEnv) -> Result<String> {
    let port = env
        .variable("KBACKUP_TEST_S3_ENDPOINT")?
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let endpoint = format!("http://{}:{port}", env.variable("KBACKUP_TEST_NODE_IP")?);
    Ok(format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: minio-keys, namespace: {NAMESPACE}}}
stringData: {{AWS_ACCESS_KEY_ID: {key}, AWS_SECRET_ACCESS_KEY: {secret}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: password, namespace: {NAMESPACE}}}
stringData: {{password: bench-operator-password}}
---
apiVersion: kbackup.io/v1alpha1
kind: BackupStorage
metadata: {{name: minio, namespace: {NAMESPACE}}}
spec:
  storage: {{provider: s3, s3: {{endpoint: '{endpoint}', region: us-east-1, bucket: kbackup-test, prefix: bench-operator, secretName: minio-keys}}}}
---
apiVersion: kbackup.io/v1alpha1
kind: RetentionPolicy
metadata: {{name: keep-3, namespace: {NAMESPACE}}}
spec: {{successfulSnapshots: {{last: 3}}}}
---
{bench}",
        key = env.variable("AWS_ACCESS_KEY_ID")?,
        secret = env.variable("AWS_SECRET_ACCESS_KEY")?,
        bench = configuration("bench"),
    ))
}

/// A configuration of the namespace's manifests, scheduled at 03:00 (the rounds trigger
/// their sessions themselves).
fn configuration(name: &str) -> String {
    format!(
        "apiVersion: kbackup.io/v1alpha1
kind: BackupConfiguration
metadata: {{name: {name}, namespace: {NAMESPACE}}}
spec:
  target: {{kind: Namespace, name: {NAMESPACE}}}
  backends: [{{name: main, storageRef: {{name: minio}}, retentionPolicy: {{name: keep-3}}}}]
  sessions:
  - name: nightly
    scheduler: {{schedule: '0 3 * * *'}}
    sessionHistoryLimit: 50
    repositories: [{{name: {name}, backend: main, directory: {name}, encryptionSecret: {{name: password}}}}]
    tasks: [{{name: manifest-backup}}]
"
    )
}

fn start_operator(env: &TestEnv, binary: &Path) -> Result<Child> {
    let node = env.variable("KBACKUP_TEST_NODE_NAME")?;
    Command::new(binary)
        .args([
            "--image",
            &env.variable("KBACKUP_TEST_KBACKUP_IMAGE")?,
            "--metrics-address",
            "127.0.0.1:0",
            "--leader-election=false",
            "--watch-namespaces",
            NAMESPACE,
            "--job-node-selector",
            &format!("kubernetes.io/hostname={node}"),
            "--job-toleration",
            &env.variable("KBACKUP_TEST_NODE_TAINT")?,
            "--log-level",
            "warn",
        ])
        .env("KUBECONFIG", env.variable("KUBECONFIG")?)
        .stdout(Stdio::null())
        .spawn()
        .context("starting kbackup-operator")
}

/// Follows `kubectl get KIND --watch`, recording when each (name, state) line arrived.
fn watch(kubectl: &Kubectl, kind: &str, template: &str, arrivals: Arrivals) -> Result<Child> {
    let mut child = Command::new(&kubectl.bin)
        .arg(format!("--kubeconfig={}", kubectl.kubeconfig.display()))
        .args(["get", kind, "-n", NAMESPACE, "--watch", "-o"])
        .arg(format!("jsonpath={template}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("kubectl stdout")?;
    let kind = kind.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let key = format!("{kind}/{}", line.trim());
            arrivals
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key)
                .or_insert_with(Instant::now);
        }
    });
    Ok(child)
}

/// When the first line of `name` holding `word` (any line when empty) arrived.
fn wait_for(arrivals: &Arrivals, name: &str, word: &str) -> Result<Instant> {
    let started = Instant::now();
    loop {
        let found = arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(key, _)| {
                let mut words = key.split_whitespace();
                words.next() == Some(name) && (word.is_empty() || words.any(|w| w == word))
            })
            .map(|(_, at)| *at)
            .min();
        if let Some(at) = found {
            return Ok(at);
        }
        if started.elapsed() > WAIT {
            bail!("timed out waiting for {name} {word}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Medians of the two delays, then the memory at rest, with the configurations, and peak.
fn measure(
    kubectl: &Kubectl,
    operator: &mut Child,
    rounds: usize,
) -> Result<(f64, f64, f64, f64, f64)> {
    let arrivals: Arrivals = Arc::default();
    let mut watches = vec![
        watch(
            kubectl,
            "jobs",
            "{.metadata.name} {.status.conditions[*].type}{\"\\n\"}",
            arrivals.clone(),
        )?,
        watch(
            kubectl,
            "backupsessions",
            "{.metadata.name} {.status.phase}{\"\\n\"}",
            arrivals.clone(),
        )?,
    ];
    let outcome = (|| -> Result<(f64, f64, f64, f64, f64)> {
        let storage_ready = Instant::now();
        while kubectl.run(&[
            "get",
            "backupstorage",
            "minio",
            "-n",
            NAMESPACE,
            "-o",
            "jsonpath={.status.phase}",
        ])? != "Ready"
        {
            if storage_ready.elapsed() > WAIT {
                bail!("the storage did not become Ready");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let (mut to_job, mut to_status) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            let name = format!("bench-{round}");
            let created = Instant::now();
            kubectl.apply(&format!(
                "apiVersion: kbackup.io/v1alpha1
kind: BackupSession
metadata: {{name: {name}, namespace: {NAMESPACE}}}
spec: {{invoker: {{name: bench}}, session: nightly}}
"
            ))?;
            let job = format!("{name}-bench");
            let job_made = wait_for(&arrivals, &format!("jobs/{job}"), "")?;
            let job_done = wait_for(&arrivals, &format!("jobs/{job}"), "Complete")?;
            let succeeded = wait_for(&arrivals, &format!("backupsessions/{name}"), "Succeeded")?;
            to_job.push(job_made.duration_since(created).as_secs_f64());
            to_status.push(succeeded.duration_since(job_done).as_secs_f64());
            eprintln!(
                "  round {round}: created → Job {:.3} s, Job complete → Succeeded {:.3} s",
                to_job[round - 1],
                to_status[round - 1]
            );
        }
        let rest = resident_mib(operator.id())?.0;
        let mut many = String::new();
        for n in 0..CONFIGURATIONS {
            writeln!(many, "---\n{}", configuration(&format!("many-{n}")))?;
        }
        kubectl.apply(&many)?;
        let started = Instant::now();
        loop {
            let phases = kubectl.run(&[
                "get",
                "backupconfigurations",
                "-n",
                NAMESPACE,
                "-o",
                "jsonpath={.items[*].status.phase}",
            ])?;
            let cron_jobs = kubectl.run(&["get", "cronjobs", "-n", NAMESPACE, "-o", "name"])?;
            if phases.split_whitespace().count() > CONFIGURATIONS
                && cron_jobs.lines().count() > CONFIGURATIONS
            {
                break;
            }
            if started.elapsed() > WAIT {
                bail!("the {CONFIGURATIONS} configurations were not all reconciled");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        std::thread::sleep(Duration::from_secs(5));
        let (loaded, peak) = resident_mib(operator.id())?;
        Ok((middle(to_job), middle(to_status), rest, loaded, peak))
    })();
    for watch in &mut watches {
        let _ = watch.kill();
        let _ = watch.wait();
    }
    outcome
}

/// The process's resident and peak resident memory, in MiB.
fn resident_mib(pid: u32) -> Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{name} in /proc/{pid}/status"))?;
        let kib: f64 = line
            .split_whitespace()
            .nth(1)
            .context("a number")?
            .parse()?;
        Ok(kib / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// The median of some durations.
fn middle(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
