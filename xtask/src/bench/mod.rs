//! `cargo xtask bench ...`: each capability measured side by side with the tool a user would
//! otherwise use, in the same run, reported as a ratio (this machine is shared and noisy).

mod cluster;
mod elasticsearch;
mod fresh_fs;
mod mixed_data;
mod operator;
mod peers;
mod repo;
mod repo_scale;
mod sources;
mod stackgraph;
mod storage;
mod volumes;

use crate::testenv::TestEnv;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// What to benchmark.
#[derive(clap::Subcommand)]
pub enum Which {
    /// `kbackup storage cp` to the test MinIO and back, beside `rclone copyto`.
    Storage {
        /// Size of the file streamed (MiB).
        #[arg(long, default_value_t = 2048)]
        size_mib: usize,
        /// Rounds per tool and direction (the median is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// `kbackup backup|restore cluster` beside raw LISTs and a parallel create floor (and,
    /// up to 10,000 objects, kubectl get and kubectl apply --server-side).
    Cluster {
        /// Object counts measured, one after the other (the memory curve).
        #[arg(long, value_delimiter = ',', default_value = "10000")]
        objects: Vec<usize>,
        /// Rounds per step up to 10,000 objects (the median is reported); one above.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// `kbackup elasticsearch restore` of about 1 GiB beside the plain `_restore` call.
    Elasticsearch {
        /// Size of the index set loaded (MiB of documents).
        #[arg(long, default_value_t = 1024)]
        size_mib: usize,
        /// Restores per tool (the median is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// `kbackup backup|restore path` beside restic 0.18.1 and rustic 0.11.4, on 2 GiB of
    /// mixed files and on the Linux source tree, to local disk and to MinIO.
    Repo {
        /// Rounds (the median is reported); six balance the order of the tools.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Peak memory and time of a first backup of many empty files (kbackup, restic 0.18.1,
    /// rustic 0.11.4, local disk): does memory grow with the number of files?
    RepoScale {
        /// File counts measured, one after the other.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
        files: Vec<usize>,
    },
    /// `kbackup backup|restore volumes` through the in-cluster mover on the real node, beside
    /// `kbackup backup|restore path` and restic 0.18.1 on the host, on the data of `repo`.
    Volumes {
        /// Rounds (the median is reported); six balance the order of the tools.
        #[arg(long, default_value_t = 6)]
        rounds: usize,
    },
    /// Orchestration overhead of `kbackup stackgraph restore` on a simulated installation.
    Stackgraph {
        /// Restores measured (the median is reported).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// The operator's overhead: session to Job, Job to status, memory with 100 configurations.
    Operator {
        /// Sessions measured (the median is reported).
        #[arg(long, default_value_t = 10)]
        rounds: usize,
    },
}

pub fn run(root: &Path, env: &TestEnv, which: Which) -> Result<()> {
    match which {
        Which::Storage { size_mib, rounds } => storage::run(root, env, size_mib, rounds),
        Which::Stackgraph { rounds } => stackgraph::run(root, env, rounds),
        Which::Cluster { objects, rounds } => cluster::run(root, env, &objects, rounds),
        Which::Repo { rounds } => repo::run(root, env, rounds),
        Which::RepoScale { files } => repo_scale::run(root, env, &files),
        Which::Volumes { rounds } => volumes::run(root, env, rounds),
        Which::Operator { rounds } => operator::run(root, env, rounds),
        Which::Elasticsearch { size_mib, rounds } => {
            elasticsearch::run(root, env, size_mib, rounds)
        }
    }
}

/// Fails naming the Debian package of the first tool that is not installed.
fn require_tools(tools: &[(&str, &str)]) -> Result<()> {
    for (tool, package) in tools {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            bail!("this benchmark needs {tool}: apt-get install {package}");
        }
    }
    Ok(())
}

/// Starts the test environment and builds the release `kbackup`, returning its path.
fn release_kbackup(root: &Path, env: &TestEnv) -> Result<PathBuf> {
    env.up()?;
    crate::ci::release_kbackup(root, env)
}

/// One timed run: wall seconds and peak resident memory.
#[derive(Clone, Copy)]
pub(crate) struct Sample {
    pub seconds: f64,
    pub max_rss_mib: f64,
}

/// Runs `command` under `/usr/bin/time`, after a `sync`; its output is discarded (the
/// wrapper would not carry the command's own stdio settings over).
pub(crate) fn timed(command: Command, what: &str) -> Result<Sample> {
    // The previous command's writes flushed first: neither tool pays for the other's.
    sync()?;
    let report = tempfile_path("time");
    let program = command.get_program().to_owned();
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .args(["-f", "%e %M", "-o"])
        .arg(&report)
        .arg(program)
        .args(command.get_args());
    for (k, v) in command.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    let status = wrapped
        .stdout(std::process::Stdio::null())
        .status()
        .with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    let text = std::fs::read_to_string(&report)?;
    let mut fields = text
        .split_whitespace()
        .rev()
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev();
    let seconds: f64 = fields.next().context("time output")?.parse()?;
    let rss_kib: f64 = fields.next().context("time output")?.parse()?;
    Ok(Sample {
        seconds,
        max_rss_mib: rss_kib / 1024.0,
    })
}

/// Writes every dirty page of the machine out (`sync`).
pub(crate) fn sync() -> Result<()> {
    let synced = Command::new("sync").status().context("running sync")?;
    if !synced.success() {
        bail!("sync failed ({synced})");
    }
    Ok(())
}

/// Writes the dirty pages out and drops the page cache, so that the next step reads from the
/// disk whoever ran before it (needs root).
pub(crate) fn drop_caches() -> Result<()> {
    sync()?;
    std::fs::write("/proc/sys/vm/drop_caches", "3")
        .context("dropping the page cache (/proc/sys/vm/drop_caches; the benchmark runs as root)")
}

/// Waits until the machine is idle again (at least 85% of its CPU time idle over half a
/// second, at most 60 s): the object store goes on working after a large upload (its
/// scanner, its disk flushes), and that work must not land on the next tool's clock.
/// Returns how long it waited.
pub(crate) fn wait_until_idle() -> Result<Duration> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let before = cpu_times()?;
        std::thread::sleep(Duration::from_millis(500));
        let after = cpu_times()?;
        let total: u64 = after.iter().zip(&before).map(|(a, b)| a - b).sum();
        // The fourth field is idle time; waiting for I/O is not idle.
        if total > 0 && (after[3] - before[3]) * 100 >= total * 85 {
            return Ok(start.elapsed());
        }
    }
    bail!("the machine stayed busy for 60 s: something else runs beside the benchmark")
}

/// The machine's CPU time counters (`/proc/stat`'s first line: user, nice, system, idle,
/// iowait, irq, softirq, steal).
fn cpu_times() -> Result<Vec<u64>> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat.lines().next().context("/proc/stat is empty")?;
    line.split_whitespace()
        .skip(1)
        .take(8)
        .map(|field| field.parse().context("a /proc/stat counter"))
        .collect()
}

/// The order of three tools in each round: over six rounds every tool goes first, second
/// and last, and follows each other tool, equally often (a Williams design). A plain
/// rotation always runs each tool right after the same other one.
pub(crate) const ORDERS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [2, 1, 0],
    [1, 2, 0],
    [0, 2, 1],
    [2, 0, 1],
    [1, 0, 2],
];

/// Times `command` from an idle machine with the page cache dropped until its writes are on
/// the disk (the `sync` after it counts).
pub(crate) fn measured(command: Command, what: &str) -> Result<Sample> {
    settle()?;
    flushed(timed(command, what)?)
}

/// Waits for an idle machine (saying so when it took a while), then drops the page cache.
pub(crate) fn settle() -> Result<()> {
    let waited = wait_until_idle()?;
    if waited > Duration::from_secs(1) {
        eprintln!(
            "  (waited {:.1}s for the machine to be idle)",
            waited.as_secs_f64()
        );
    }
    drop_caches()
}

/// A step's time until its writes are on the disk: a restore otherwise leaves gigabytes in
/// the page cache, written out on the next tool's clock.
pub(crate) fn flushed(mut sample: Sample) -> Result<Sample> {
    let flush = Instant::now();
    sync()?;
    sample.seconds += flush.elapsed().as_secs_f64();
    Ok(sample)
}

/// The version a restic binary reports.
pub(crate) fn restic_version(restic: &Path) -> String {
    Command::new(restic)
        .arg("version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .nth(1)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "?".into())
}

fn tempfile_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("kbackup-bench-{}-{name}", std::process::id()))
}

pub(crate) fn median(samples: &[Sample]) -> Sample {
    let mut sorted = samples.to_vec();
    sorted.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let peak = samples.iter().map(|s| s.max_rss_mib).fold(0.0, f64::max);
    Sample {
        seconds: sorted[sorted.len() / 2].seconds,
        max_rss_mib: peak,
    }
}

/// One measurement, on stderr as it is taken.
pub(crate) fn print_sample(what: &str, sample: Sample) {
    eprintln!(
        "  {what}: {:.2}s, peak RSS {:.0} MiB",
        sample.seconds, sample.max_rss_mib
    );
}

/// The range of the samples' times: `(low-high)`.
pub(crate) fn spread(samples: &[Sample]) -> String {
    let seconds = samples.iter().map(|s| s.seconds);
    let min = seconds.clone().fold(f64::INFINITY, f64::min);
    let max = seconds.fold(0.0, f64::max);
    format!("({min:.2}-{max:.2})")
}

/// Replaces (or appends) the section between `<!-- bench:NAME -->` markers.
pub(crate) fn write_section(path: &Path, name: &str, section: &str) -> Result<()> {
    let (start, end) = (
        format!("<!-- bench:{name} -->"),
        format!("<!-- /bench:{name} -->"),
    );
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n\nMeasured side by side with the tool a user would otherwise use, in the same run; ratios matter, absolute times on this shared machine do not.\n".into());
    let block = format!("{start}\n{section}{end}");
    let new = match (old.find(&start), old.find(&end)) {
        (Some(a), Some(b)) => format!("{}{block}{}", &old[..a], &old[b + end.len()..]),
        _ => format!("{}\n{block}\n", old.trim_end()),
    };
    std::fs::write(path, new)?;
    Ok(())
}
