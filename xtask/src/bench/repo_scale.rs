//! `cargo xtask bench repo-scale`: how a backup's memory grows with the number of files.
//! Trees of empty files (10,000, 100,000, 1,000,000 by default, 1,000 per directory) backed
//! up to the local disk by kbackup, restic 0.18.1 and rustic 0.11.4. The published anchor:
//! kopia backed up 4 million empty files in 24m54s with 1.5 GB on one core, restic in 52m31s.

use super::peers::{Backend, Peers, TOOLS};
use super::{ORDERS, Sample, measured, print_sample, write_section};
use crate::testenv::TestEnv;
use anyhow::{Result, bail};
use std::fmt::Write as _;
use std::path::Path;

const PER_DIRECTORY: usize = 1_000;

pub fn run(root: &Path, env: &TestEnv, counts: &[usize]) -> Result<()> {
    super::require_tools(&[("/usr/bin/time", "time")])?;
    let state = env.root.join("bench/repo-scale/state");
    let peers = Peers::new(root, env, state, None)?;
    let bench = env.root.join("bench/repo-scale");
    let mut rows = Vec::new();
    for (round, &count) in counts.iter().enumerate() {
        let tree = bench.join("tree");
        empty_files(&tree, count)?;
        let work = bench.join("work");
        let mut samples = [None; 3];
        for t in ORDERS[round % ORDERS.len()] {
            std::fs::remove_dir_all(&work).ok();
            std::fs::create_dir_all(&work)?;
            let repo = peers.repo(TOOLS[t], Backend::LocalDisk, &work, "scale")?;
            if !peers.init(&repo).status()?.success() {
                bail!("initialising the {} repository failed", TOOLS[t].name());
            }
            let what = format!("{} backup of {count} empty files", TOOLS[t].name());
            let sample = measured(peers.backup(&repo, &tree), &what)?;
            print_sample(&what, sample);
            samples[t] = Some(sample);
        }
        std::fs::remove_dir_all(&work).ok();
        rows.push((
            count,
            samples.map(|s| {
                s.unwrap_or(Sample {
                    seconds: 0.0,
                    max_rss_mib: 0.0,
                })
            }),
        ));
    }
    std::fs::remove_dir_all(bench.join("tree")).ok();
    let mut table = String::new();
    writeln!(
        table,
        "| files | kbackup s | kbackup peak RSS | restic s | restic peak RSS | rustic s | rustic peak RSS |"
    )?;
    writeln!(table, "|---|---|---|---|---|---|---|")?;
    for (count, [k, r, u]) in &rows {
        writeln!(
            table,
            "| {count} | {:.2} | {:.0} MiB | {:.2} | {:.0} MiB | {:.2} | {:.0} MiB |",
            k.seconds, k.max_rss_mib, r.seconds, r.max_rss_mib, u.seconds, u.max_rss_mib
        )?;
    }
    let section = format!(
        "## Repository: memory as the files grow\n\n`cargo xtask bench repo-scale`: first backups of trees of empty files \
         ({PER_DIRECTORY} per directory) to the local disk, each from an idle machine with the page cache dropped, until \
         its writes are on the disk. The published anchor: kopia took 24m54s and 1.5 GB for 4 million empty files on one \
         core, restic 52m31s.\n\n{table}"
    );
    println!("{section}");
    write_section(&root.join("docs/benchmarks.md"), "repo-scale", &section)
}

/// `count` empty files below `tree`, 1,000 per directory (the tree is kept when it already
/// has that many).
fn empty_files(tree: &Path, count: usize) -> Result<()> {
    let marker = tree.join(".count");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(count.to_string().as_str()) {
        return Ok(());
    }
    eprintln!("making {count} empty files in {}", tree.display());
    std::fs::remove_dir_all(tree).ok();
    for d in 0..count.div_ceil(PER_DIRECTORY) {
        let dir = tree.join(format!("d{:04}/{d:05}", d / 100));
        std::fs::create_dir_all(&dir)?;
        for f in 0..PER_DIRECTORY.min(count - d * PER_DIRECTORY) {
            std::fs::File::create(dir.join(format!("f{f:04}")))?;
        }
    }
    std::fs::write(&marker, count.to_string())?;
    Ok(())
}
