//! `cargo xtask bench repo`: `kbackup backup path` / `restore path` beside restic 0.18.1 and
//! rustic 0.11.4, on two data sets (2 GiB of generated mixed files; the Linux source tree
//! of a Debian package, about 79,000 real files), into a local directory and into the test
//! MinIO: first backup, second backup of unchanged data, restore, repository size, peak
//! memory.

use super::fresh_fs::FreshFs;
use super::mixed_data::{bytes_under, generate};
use super::peers::{Backend, Peers, S3, TOOLS};
use super::{ORDERS, Sample, measured, median, print_sample, spread, write_section};
use crate::testenv::TestEnv;
use anyhow::{Result, bail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The measured steps.
const STEPS: [&str; 3] = ["first backup", "second backup (unchanged)", "restore"];
/// Goals against the best peer, per step.
const GOALS: [f64; 3] = [0.6, 0.4, 0.6];

/// A data set.
struct DataSet {
    name: &'static str,
    path: PathBuf,
    files: u64,
    bytes: u64,
}

/// One tool's measurements of one data set on one backend: per step, per round, the sample
/// and the tool's position in the round's order.
#[derive(Default)]
struct Runs {
    steps: [Vec<(Sample, usize)>; 3],
    size: u64,
}

pub fn run(root: &Path, env: &TestEnv, rounds: usize) -> Result<()> {
    super::require_tools(&[
        ("/usr/bin/time", "time"),
        ("mkfs.ext4", "e2fsprogs"),
        ("apt-get", "apt"),
    ])?;
    let s3 = S3 {
        endpoint: env.variable("KBACKUP_TEST_S3_ENDPOINT")?,
        bucket: env.variable("KBACKUP_TEST_S3_BUCKET")?,
        access_key: env.variable("AWS_ACCESS_KEY_ID")?,
        secret_key: env.variable("AWS_SECRET_ACCESS_KEY")?,
    };
    let bucket = s3.bucket.clone();
    let peers = Peers::new(root, env, env.root.join("bench/repo/state"), Some(s3))?;
    let bench = env.root.join("bench/repo");
    let mixed = bench.join("data");
    generate(&mixed)?;
    let (sources, debian_version) = super::sources::fetch(&bench.join("sources"))?;
    let sets = [("mixed", mixed), ("Linux sources", sources)].map(|(name, path)| {
        let (files, bytes) = bytes_under(&path)?;
        eprintln!("{name}: {files} files, {:.2} GiB", gib(bytes));
        Ok::<_, anyhow::Error>(DataSet {
            name,
            path,
            files,
            bytes,
        })
    });
    let sets: Vec<DataSet> = sets.into_iter().collect::<Result<_>>()?;
    let backends = [
        (Backend::LocalDisk, "local disk"),
        (Backend::Minio, "MinIO"),
    ];
    let work = bench.join("work");
    let mut results: Vec<Vec<[Runs; 3]>> = sets
        .iter()
        .map(|_| backends.iter().map(|_| Default::default()).collect())
        .collect();
    for round in 0..rounds {
        let order = ORDERS[round % ORDERS.len()];
        for (s, set) in sets.iter().enumerate() {
            for (b, (backend, backend_name)) in backends.iter().enumerate() {
                eprintln!(
                    "round {}/{rounds}, {}, {backend_name}: {}",
                    round + 1,
                    set.name,
                    order.map(|t| TOOLS[t].name()).join(", ")
                );
                std::fs::remove_dir_all(&work).ok();
                std::fs::create_dir_all(&work)?;
                let prefix = format!("bench-repo-{}-{round}-{s}", std::process::id());
                let cell = &mut results[s][b];
                measure_cell(&peers, set, *backend, &work, &prefix, order, cell)?;
                if *backend == Backend::LocalDisk {
                    for tool in TOOLS {
                        let repo = work.join(format!("repo-{}", tool.name()));
                        cell[tool as usize].size = bytes_under(&repo)?.1;
                    }
                }
                // The test MinIO keeps a prefix as a directory of its data.
                for tool in TOOLS {
                    let stored = env.data("minio").join(&bucket);
                    std::fs::remove_dir_all(stored.join(format!("{prefix}-{}", tool.name()))).ok();
                }
            }
        }
    }
    std::fs::remove_dir_all(&work).ok();
    let section = report(
        &results,
        &sets,
        &backends.map(|(_, n)| n),
        rounds,
        &peers,
        &debian_version,
    )?;
    println!("{section}");
    write_section(&root.join("docs/benchmarks.md"), "repo", &section)
}

/// One round of one data set on one backend: both backups, then the restores, each tool in
/// `order`.
fn measure_cell(
    peers: &Peers,
    set: &DataSet,
    backend: Backend,
    work: &Path,
    prefix: &str,
    order: [usize; 3],
    cell: &mut [Runs; 3],
) -> Result<()> {
    let mut repos = Vec::new();
    for tool in TOOLS {
        let repo = peers.repo(tool, backend, work, prefix)?;
        if !peers.init(&repo).status()?.success() {
            bail!("initialising the {} repository failed", tool.name());
        }
        repos.push(repo);
    }
    for (step, name) in STEPS[..2].iter().enumerate() {
        for (position, &t) in order.iter().enumerate() {
            let what = format!("{} {name}", TOOLS[t].name());
            let sample = measured(peers.backup(&repos[t], &set.path), &what)?;
            print_sample(&what, sample);
            cell[t].steps[step].push((sample, position));
        }
    }
    for (position, &t) in order.iter().enumerate() {
        let tool = TOOLS[t];
        let fs = FreshFs::new(work, "restore", set.bytes * 2 + (2 << 30))?;
        // A directory the tool makes: the file system's root holds lost+found.
        let target = fs.path().join("target");
        let what = format!("{} restore", tool.name());
        let sample = measured(peers.restore(&repos[t], &set.path, &target), &what)?;
        print_sample(&what, sample);
        let found = bytes_under(&Peers::restored(tool, &set.path, &target))?;
        if found != (set.files, set.bytes) {
            bail!(
                "the {} restore of {} is incomplete: {found:?} files and bytes, expected {:?}",
                tool.name(),
                set.name,
                (set.files, set.bytes)
            );
        }
        cell[t].steps[2].push((sample, position));
    }
    Ok(())
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 30)
}

fn report(
    results: &[Vec<[Runs; 3]>],
    sets: &[DataSet],
    backends: &[&str],
    rounds: usize,
    peers: &Peers,
    debian_version: &str,
) -> Result<String> {
    let mut table = String::new();
    writeln!(
        table,
        "| data | backend | step | kbackup s | restic s | rustic s | kbackup / best peer | goal | kbackup peak RSS | restic peak RSS | rustic peak RSS |"
    )?;
    writeln!(table, "|---|---|---|---|---|---|---|---|---|---|---|")?;
    // Per step and position in the round: each time over its tool's median, summed.
    let mut positions = [[(0.0, 0usize); 3]; 3];
    for (set, by_backend) in sets.iter().zip(results) {
        for (backend, cell) in backends.iter().zip(by_backend) {
            for step in 0..3 {
                let samples: Vec<Vec<Sample>> = cell
                    .iter()
                    .map(|runs| runs.steps[step].iter().map(|(s, _)| *s).collect())
                    .collect();
                let medians: Vec<Sample> = samples.iter().map(|s| median(s)).collect();
                for (runs, m) in cell.iter().zip(&medians) {
                    for (sample, position) in &runs.steps[step] {
                        let entry = &mut positions[step][*position];
                        entry.0 += sample.seconds / m.seconds;
                        entry.1 += 1;
                    }
                }
                let best_peer = medians[1].seconds.min(medians[2].seconds);
                let lowest_rss = medians[1].max_rss_mib.min(medians[2].max_rss_mib);
                let rss_mark = if medians[0].max_rss_mib <= lowest_rss {
                    ""
                } else {
                    " (over)"
                };
                writeln!(
                    table,
                    "| {} | {backend} | {} | {} | {} | {} | **{:.2}** | <= {} | {:.0} MiB{rss_mark} | {:.0} MiB | {:.0} MiB |",
                    set.name,
                    STEPS[step],
                    with_spread(&samples[0]),
                    with_spread(&samples[1]),
                    with_spread(&samples[2]),
                    medians[0].seconds / best_peer,
                    GOALS[step],
                    medians[0].max_rss_mib,
                    medians[1].max_rss_mib,
                    medians[2].max_rss_mib,
                )?;
            }
        }
    }
    writeln!(
        table,
        "\nRepository size on local disk after the two backups (goal: kbackup <= the smallest peer's):\n"
    )?;
    writeln!(
        table,
        "| data | kbackup MiB | restic MiB | rustic MiB | kbackup / smallest peer |"
    )?;
    writeln!(table, "|---|---|---|---|---|")?;
    for (set, by_backend) in sets.iter().zip(results) {
        let sizes = by_backend[0]
            .each_ref()
            .map(|r| r.size as f64 / f64::from(1 << 20));
        writeln!(
            table,
            "| {} | {:.0} | {:.0} | {:.0} | **{:.3}** |",
            set.name,
            sizes[0],
            sizes[1],
            sizes[2],
            sizes[0] / sizes[1].min(sizes[2])
        )?;
    }
    writeln!(
        table,
        "\nThe order effect: each time over its tool's median in that cell, averaged by the tool's position in the round:\n"
    )?;
    for (step, by_position) in STEPS.iter().zip(positions) {
        let cells: Vec<String> = by_position
            .iter()
            .zip(["first", "second", "third"])
            .map(|((sum, n), name)| format!("{name} {:.2}x", sum / (*n).max(1) as f64))
            .collect();
        writeln!(table, "- {step}: {}", cells.join(", "))?;
    }
    let described: Vec<String> = sets
        .iter()
        .map(|s| format!("{} ({} files, {:.2} GiB)", s.name, s.files, gib(s.bytes)))
        .collect();
    Ok(format!(
        "## Repository (file trees)\n\n`cargo xtask bench repo --rounds {rounds}`: kbackup beside restic {} and rustic {}, on {}: \
         the generated mixed set (16,000 small text files, 60 medium files half text, 3 large files alternating random and \
         text MiBs) and the Linux source tree of Debian's linux-source-6.1 {debian_version}. Fresh repositories each round; \
         restic and rustic with their default caches. Every step starts on an idle machine with the page cache dropped, and \
         is timed until its writes are on the disk (a `sync` after it counts). Each restore goes into a freshly made ext4 \
         file system (creating files gets slower as a file system fills) on a loop device with direct I/O (its writes reach \
         the disk as a real disk's do, not cached a second time by the image's file system). The tools' order changes every round so that, over \
         six rounds, each goes first, second and last, and follows each other tool, equally often. Medians of {rounds} \
         round(s), their range in brackets; peak RSS the largest seen; \"best peer\" the faster of restic and rustic.\n\n{table}",
        super::restic_version(&peers.restic),
        version_of(&peers.rustic),
        described.join(" and "),
    ))
}

/// A median with the range of the samples.
fn with_spread(samples: &[Sample]) -> String {
    format!("{:.2} {}", median(samples).seconds, spread(samples))
}

/// The version a program prints with `--version` (its last word).
fn version_of(program: &Path) -> String {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .last()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "?".into())
}
