//! `cargo xtask bench volumes`: the file tree of `bench repo` on a claim of the test
//! environment's real node, backed up and restored through the in-cluster mover (`kbackup
//! backup volumes`, `kbackup restore volumes --claim`) beside the same `kbackup backup|restore
//! path` and restic run on the host, all three into the test MinIO: the cost of going through
//! Kubernetes, and the mover pod's peak memory read from its cgroup.

use super::mixed_data::{bytes_under, generate};
use super::{Sample, median, spread, timed, write_section};
use crate::testenv::{Kubectl, TestEnv};
use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

const NAMESPACE: &str = "kbackup-bench-volumes";
const APP: &str = include_str!("../../bench/volumes-app.yaml");
/// The claim the mover restores into, made afresh and bound for every restore.
const RESTORE_CLAIM_MANIFEST: &str = include_str!("../../bench/volumes-restore-claim.yaml");
const RESTORE_CLAIM: &str = "restored";
/// The tools compared, in the order of the results.
const TOOLS: [&str; 3] = ["mover", "kbackup", "restic"];

/// One tool's measurements: backups, re-backups, restores (and for the mover, its pod's
/// cgroup peak with page cache, beside the resident peak in the samples).
#[derive(Default)]
struct Runs {
    first: Vec<Sample>,
    second: Vec<Sample>,
    restore: Vec<Sample>,
    cgroup_peak_mib: f64,
}

pub fn run(root: &Path, env: &TestEnv, rounds: usize) -> Result<()> {
    super::require_tools(&[("/usr/bin/time", "time")])?;
    env.up()?;
    crate::image::run(root, env, None, true)?;
    let kbackup = crate::ci::release_kbackup(root, env)?;
    let restic = env.component("restic")?.join("bin/restic");
    let kubectl = env.kubectl()?;
    let data = env.root.join("bench/repo/data");
    generate(&data)?;
    let expected = bytes_under(&data)?;

    kubectl.apply(&env.real_node_manifest(APP)?)?;
    kubectl.run(&[
        "rollout",
        "status",
        "deployment/bench",
        "-n",
        NAMESPACE,
        "--timeout=180s",
    ])?;
    let volume = claim_dir(&kubectl, "data")?;
    if bytes_under(&volume)? != expected {
        eprintln!(
            "copying the benchmark data onto the claim ({})",
            volume.display()
        );
        copy_tree(&data, &volume)?;
    }
    let scratch = volume
        .parent()
        .context("the claim's directory has no parent")?
        .join("kbackup-bench-restores");
    let source = volume.display().to_string();
    let component = format!("/{NAMESPACE}/deployment/bench/data/data");

    let endpoint = env.variable("KBACKUP_TEST_S3_ENDPOINT")?;
    let bucket = env.variable("KBACKUP_TEST_S3_BUCKET")?;
    let mut credentials = env.s3_client_variables()?;
    credentials.extend([
        ("KUBECONFIG", env.variable("KUBECONFIG")?),
        ("KBACKUP_PASSWORD", "bench".into()),
        ("RESTIC_PASSWORD", "bench".into()),
        (
            "RESTIC_CACHE_DIR",
            env.root.join("bench/restic-cache").display().to_string(),
        ),
    ]);
    let mover_flags = env.real_node_mover_flags()?;
    let mover_args: Vec<&str> = mover_flags.iter().map(String::as_str).collect();
    let command = |program: &Path, repo: &str, args: &[&str]| {
        let mut c = Command::new(program);
        match program == restic.as_path() {
            true => c.args(["-r", repo, "--quiet"]),
            false => c.args(["-q", "--no-progress"]).env("KBACKUP_REPO", repo),
        };
        c.args(args)
            .envs(credentials.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null());
        c
    };

    let mut results: [Runs; 3] = Default::default();
    for round in 0..rounds {
        let prefix = format!("bench-volumes-{}-{round}", std::process::id());
        let repos = [
            format!("s3://{bucket}/{prefix}-mover"),
            format!("s3://{bucket}/{prefix}-kbackup"),
            format!("s3:{endpoint}/{bucket}/{prefix}-restic"),
        ];
        for (tool, repo) in repos.iter().enumerate() {
            let mut init = match tool {
                2 => command(&restic, repo, &["init"]),
                _ => command(&kbackup, repo, &["repo", "init"]),
            };
            if !init.status()?.success() {
                bail!("initialising the {} repository failed", TOOLS[tool]);
            }
        }
        let order = super::ORDERS[round % super::ORDERS.len()];
        eprintln!(
            "round {}/{rounds}: {}",
            round + 1,
            order
                .iter()
                .map(|&t| TOOLS[t])
                .collect::<Vec<_>>()
                .join(", ")
        );
        for step in ["first backup", "second backup"] {
            for &tool in &order {
                let backup = match tool {
                    0 => command(
                        &kbackup,
                        &repos[0],
                        &[
                            &["-n", NAMESPACE, "backup", "volumes"][..],
                            &["--workload", "deployment/bench"],
                            &mover_args[..2],
                        ]
                        .concat(),
                    ),
                    1 => command(&kbackup, &repos[1], &["backup", "path", &source]),
                    _ => command(&restic, &repos[2], &["backup", &source]),
                };
                let (sample, cgroup) = measure(backup, tool, &format!("{} {step}", TOOLS[tool]))?;
                let runs = &mut results[tool];
                runs.cgroup_peak_mib = runs.cgroup_peak_mib.max(cgroup);
                match step {
                    "first backup" => runs.first.push(sample),
                    _ => runs.second.push(sample),
                }
            }
        }
        for &tool in &order {
            let target = match tool {
                0 => {
                    bound_restore_claim(&kubectl, env)?;
                    None
                }
                _ => Some(scratch.join(TOOLS[tool])),
            };
            let restore = match (tool, &target) {
                (1, Some(target)) => command(
                    &kbackup,
                    &repos[1],
                    &[
                        "restore",
                        "path",
                        &format!("latest:{source}"),
                        "--target",
                        &target.display().to_string(),
                    ],
                ),
                (2, Some(target)) => command(
                    &restic,
                    &repos[2],
                    &[
                        "restore",
                        "latest",
                        "--target",
                        &target.display().to_string(),
                    ],
                ),
                _ => command(
                    &kbackup,
                    &repos[0],
                    &[
                        &[
                            "-n",
                            NAMESPACE,
                            "restore",
                            "volumes",
                            &format!("latest:{component}"),
                            "--claim",
                            RESTORE_CLAIM,
                        ][..],
                        &mover_args,
                    ]
                    .concat(),
                ),
            };
            let (sample, cgroup) = measure(restore, tool, &format!("{} restore", TOOLS[tool]))?;
            let restored = match (tool, &target) {
                (2, Some(target)) => target.join(source.trim_start_matches('/')),
                (_, Some(target)) => target.clone(),
                _ => claim_dir(&kubectl, RESTORE_CLAIM)?,
            };
            let found = bytes_under(&restored)?;
            if found != expected {
                bail!(
                    "the {} restore of round {} is incomplete: {found:?} files and bytes, expected {expected:?}",
                    TOOLS[tool],
                    round + 1
                );
            }
            match target {
                Some(target) => std::fs::remove_dir_all(target)?,
                None => delete_restore_claim(&kubectl)?,
            }
            results[tool].restore.push(sample);
            results[tool].cgroup_peak_mib = results[tool].cgroup_peak_mib.max(cgroup);
        }
        // The test MinIO keeps a prefix as a directory of its data.
        for repo in TOOLS {
            let stored = env.data("minio").join(&bucket);
            std::fs::remove_dir_all(stored.join(format!("{prefix}-{repo}"))).ok();
        }
    }
    std::fs::remove_dir_all(&scratch).ok();
    kubectl.run(&["delete", "namespace", NAMESPACE, "--timeout=180s"])?;

    let section = report(&results, rounds, expected, &restic)?;
    println!("{section}");
    write_section(&root.join("docs/benchmarks.md"), "volumes", &section)
}

/// Times one step, from a dropped page cache until its writes are on the disk; for the mover, also samples the memory
/// of the pods started meanwhile (its peak resident memory replaces the CLI's own in the
/// sample) and returns their cgroup peak with page cache.
fn measure(command: Command, tool: usize, what: &str) -> Result<(Sample, f64)> {
    if tool != 0 {
        let sample = super::measured(command, what)?;
        eprintln!(
            "  {what}: {:.2}s, peak RSS {:.0} MiB",
            sample.seconds, sample.max_rss_mib
        );
        return Ok((sample, 0.0));
    }
    super::settle()?;
    let memory = PodMemory::start()?;
    let timing = timed(command, what);
    let peak = memory.finish()?;
    let mut sample = super::flushed(timing?)?;
    let Some((rss, usage)) = peak else {
        bail!(
            "{what}: no new pod cgroup under {} while it ran",
            pod_cgroup_root().display()
        );
    };
    sample.max_rss_mib = rss;
    eprintln!(
        "  {what}: {:.2}s, mover pod peak RSS {rss:.0} MiB ({usage:.0} MiB with page cache)",
        sample.seconds
    );
    Ok((sample, usage))
}

/// Peak memory of the pods whose cgroups appear while it runs: the mover's, and the storage
/// provisioner's helper pods (a `mkdir` each: far smaller). Sampled every 100 ms from the
/// host, so a pod cannot hide its peak by exiting before anyone asks.
struct PodMemory {
    stop: Arc<AtomicBool>,
    sampler: JoinHandle<Option<(f64, f64)>>,
}

impl PodMemory {
    fn start() -> Result<Self> {
        let before = pod_cgroups()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut peak: Option<(f64, f64)> = None;
            while !stopped.load(Ordering::Relaxed) {
                for pod in pod_cgroups().unwrap_or_default().difference(&before) {
                    if let Some((rss, usage)) = cgroup_memory(pod) {
                        let (r, u) = peak.unwrap_or_default();
                        peak = Some((r.max(rss), u.max(usage)));
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        });
        Ok(Self { stop, sampler })
    }

    /// Stops sampling: the peak resident memory and the peak with page cache, in MiB.
    fn finish(self) -> Result<Option<(f64, f64)>> {
        self.stop.store(true, Ordering::Relaxed);
        self.sampler
            .join()
            .map_err(|_| anyhow::anyhow!("the memory sampler panicked"))
    }
}

/// The host's view of the real node's pod memory cgroups (v1, cgroupfs driver).
fn pod_cgroup_root() -> PathBuf {
    Path::new("/sys/fs/cgroup/memory")
        .join(crate::testenv::node::CGROUP_ROOT)
        .join("kubepods")
}

/// The pod cgroups now present (`pod<uid>` directories, one or two levels below kubepods by
/// QoS class).
fn pod_cgroups() -> Result<BTreeSet<PathBuf>> {
    let mut pods = BTreeSet::new();
    let mut stack = vec![(pod_cgroup_root(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {} (a real node's cgroups)", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if entry.file_name().to_string_lossy().starts_with("pod") {
                pods.insert(path);
            } else if depth == 0 {
                stack.push((path, 1));
            }
        }
    }
    Ok(pods)
}

/// A pod cgroup's resident memory (anonymous, its containers included) and its usage peak
/// (page cache included), in MiB; `None` once it is gone.
fn cgroup_memory(pod: &Path) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(pod.join("memory.stat")).ok()?;
    let rss: f64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("total_rss "))?
        .trim()
        .parse()
        .ok()?;
    let usage: f64 = std::fs::read_to_string(pod.join("memory.max_usage_in_bytes"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let mib = f64::from(1 << 20);
    Some((rss / mib, usage / mib))
}

/// The host directory of a claim's volume (the local-path provisioner's hostPath).
fn claim_dir(kubectl: &Kubectl, claim: &str) -> Result<PathBuf> {
    let volume = kubectl.run(&[
        "get",
        "pvc",
        claim,
        "-n",
        NAMESPACE,
        "-o",
        "jsonpath={.spec.volumeName}",
    ])?;
    let path = kubectl.run(&[
        "get",
        "pv",
        volume.trim(),
        "-o",
        "jsonpath={.spec.hostPath.path}{.spec.local.path}",
    ])?;
    if path.trim().is_empty() {
        bail!("claim {claim} has no host directory (volume {volume:?})");
    }
    Ok(PathBuf::from(path.trim()))
}

/// Replaces `volume`'s content with a copy of `data` (attributes kept).
fn copy_tree(data: &Path, volume: &Path) -> Result<()> {
    for entry in std::fs::read_dir(volume)? {
        let path = entry?.path();
        match path.is_dir() && !path.is_symlink() {
            true => std::fs::remove_dir_all(&path)?,
            false => std::fs::remove_file(&path)?,
        }
    }
    let copied = Command::new("cp")
        .arg("-a")
        .arg(data.join("."))
        .arg(volume)
        .status()?;
    if !copied.success() {
        bail!("copying the data onto the claim failed ({copied})");
    }
    Ok(())
}

/// Creates the empty claim the mover restores into and has it bound to a volume on the
/// real node.
fn bound_restore_claim(kubectl: &Kubectl, env: &TestEnv) -> Result<()> {
    kubectl.apply(&env.real_node_manifest(RESTORE_CLAIM_MANIFEST)?)?;
    let claim = format!("pvc/{RESTORE_CLAIM}");
    for (what, condition) in [
        (claim.as_str(), "--for=jsonpath={.status.phase}=Bound"),
        (
            "pod/bind-restored",
            "--for=jsonpath={.status.phase}=Succeeded",
        ),
    ] {
        kubectl.run(&["wait", "-n", NAMESPACE, condition, what, "--timeout=120s"])?;
    }
    kubectl.run(&["delete", "pod", "bind-restored", "-n", NAMESPACE])?;
    Ok(())
}

/// Deletes the restore claim and waits for its volume's directory to be removed.
fn delete_restore_claim(kubectl: &Kubectl) -> Result<()> {
    let volume = kubectl.run(&[
        "get",
        "pvc",
        RESTORE_CLAIM,
        "-n",
        NAMESPACE,
        "-o",
        "jsonpath={.spec.volumeName}",
    ])?;
    kubectl.run(&[
        "delete",
        "pvc",
        RESTORE_CLAIM,
        "-n",
        NAMESPACE,
        "--timeout=120s",
    ])?;
    let gone = format!("pv/{}", volume.trim());
    if kubectl.quiet(&["get", &gone]) {
        kubectl.run(&["wait", "--for=delete", &gone, "--timeout=120s"])?;
    }
    Ok(())
}

/// The range of a step's times, `(min-max)`.
fn report(results: &[Runs; 3], rounds: usize, data: (u64, u64), restic: &Path) -> Result<String> {
    let mut table = String::new();
    writeln!(
        table,
        "| step | mover in the cluster s | kbackup on the host s | restic on the host s | mover / host kbackup | goal | mover / restic | mover pod peak RSS | kbackup peak RSS | restic peak RSS |"
    )?;
    writeln!(table, "|---|---|---|---|---|---|---|---|---|---|")?;
    let [mover, host, restic_runs] = results;
    for (name, pick) in [
        (
            "first backup",
            (|r: &Runs| r.first.clone()) as fn(&Runs) -> Vec<Sample>,
        ),
        ("second backup (unchanged)", |r: &Runs| r.second.clone()),
        ("restore", |r: &Runs| r.restore.clone()),
    ] {
        let runs = [mover, host, restic_runs].map(pick);
        let [m, k, r] = runs.clone().map(|samples| median(&samples));
        let [ms, ks, rs] = runs.map(|samples| spread(&samples));
        writeln!(
            table,
            "| {name} | {:.2} {ms} | {:.2} {ks} | {:.2} {rs} | **{:.2}** | <= 1.15 | {:.2} | {:.0} MiB | {:.0} MiB | {:.0} MiB |",
            m.seconds,
            k.seconds,
            r.seconds,
            m.seconds / k.seconds,
            m.seconds / r.seconds,
            m.max_rss_mib,
            k.max_rss_mib,
            r.max_rss_mib
        )?;
    }
    let (files, bytes) = data;
    Ok(format!(
        "## Volumes (in-cluster mover)\n\n`cargo xtask bench volumes --rounds {rounds}`: the file tree of `bench repo` ({files} files, {:.2} GiB) \
         on a claim of the real node (a local-path volume), backed up and restored by `kbackup backup volumes` / `restore volumes --claim` \
         through a mover pod of the kbackup image, beside `kbackup backup|restore path` and restic {} run on the host on the \
         volume's directory; all three into the test MinIO, fresh repositories each round. The mover's times are the user's: \
         the command's wall time, with the Job and its pod started, the work, the report read and the cleanup. The mover restores \
         into a claim already bound to a volume (the host's tools restore into a directory). Page cache dropped before every \
         step, and each step timed until its writes are on the disk (a `sync` after it, counted). Each step starts once the machine is \
         idle again (the object store goes on working after a large upload). The order of the tools changes every round so that, over six \
         rounds, each goes first, second and last, and follows each other tool, equally often. Medians of {rounds} round(s), their range in brackets; peak memory the largest seen. The mover pod's memory is read from its cgroup \
         on the host every 100 ms: resident memory in the table; with page cache it peaked at {:.0} MiB of its 256 MiB limit \
         (the kernel reclaims the cache as the limit nears).\n\n{table}",
        bytes as f64 / f64::from(1 << 30),
        super::restic_version(restic),
        mover.cgroup_peak_mib
    ))
}
