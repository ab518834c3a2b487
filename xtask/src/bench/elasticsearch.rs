//! `cargo xtask bench elasticsearch`: restoring an index set of about 1 GiB from an `fs`
//! snapshot of the test Elasticsearch, `kbackup elasticsearch restore` (which also deletes
//! the live indices, waits for the recovery and compares document counts) beside the plain
//! `_restore?wait_for_completion=true` call on an empty cluster (the floor), alternated.

use super::{Sample, median, timed, write_section};
use crate::testenv::TestEnv;
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;

const PREFIX: &str = "benchsts";
const REPOSITORY: &str = "kbackup-bench";
const SNAPSHOT: &str = "bench-1gib";
const NAMESPACE: &str = "default";

fn curl(args: &[&str]) -> Result<String> {
    curl_as("application/json", args)
}

fn curl_as(content_type: &str, args: &[&str]) -> Result<String> {
    let header = format!("content-type: {content_type}");
    let output = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-H", &header])
        .args(args)
        .output()
        .context("running curl")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!("curl {args:?} failed: {text}");
    }
    Ok(text)
}

/// Indexes `mib` MiB of documents (random text: barely compressible) into four indices.
fn load(url: &str, mib: usize, dir: &Path) -> Result<()> {
    let batch = dir.join("bulk.ndjson");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let per_batch_docs = 8_000; // ~8 MiB per request with 1 KiB documents
    let batches = mib * 1024 / per_batch_docs + 1;
    for n in 0..batches {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&batch)?);
        for d in 0..per_batch_docs {
            let index = format!("{PREFIX}_{}", (n + d) % 4);
            let mut text = String::with_capacity(1024);
            while text.len() < 1000 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                write!(text, "{seed:016x}")?;
            }
            writeln!(file, "{{\"index\":{{\"_index\":\"{index}\"}}}}")?;
            writeln!(file, "{{\"n\":{d},\"text\":\"{text}\"}}")?;
        }
        file.flush()?;
        drop(file);
        let data = format!("@{}", batch.display());
        curl_as(
            "application/x-ndjson",
            &[
                "-XPOST",
                &format!("{url}/_bulk"),
                "--data-binary",
                &data,
                "-o",
                "/dev/null",
            ],
        )?;
        eprint!("\rloading: {}/{batches} batches", n + 1);
    }
    eprintln!();
    curl(&[
        "-XPOST",
        &format!("{url}/{PREFIX}_*/_refresh"),
        "-o",
        "/dev/null",
    ])?;
    Ok(())
}

fn store_bytes(url: &str) -> Result<u64> {
    let text = curl(&[&format!(
        "{url}/_cat/indices/{PREFIX}_*?h=store.size&bytes=b"
    )])?;
    Ok(text
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .sum())
}

pub fn run(root: &Path, env: &TestEnv, mib: usize, rounds: usize) -> Result<()> {
    let kbackup = super::release_kbackup(root, env)?;
    let url = env.variable("KBACKUP_TEST_ES_URL")?;
    let repo_path = env.variable("KBACKUP_TEST_ES_REPO_PATH")?;
    let kubeconfig = env.variable("KUBECONFIG")?;
    let dir = env.root.join("bench/elasticsearch");
    std::fs::create_dir_all(&dir)?;

    curl(&["-XDELETE", &format!("{url}/{PREFIX}_*"), "-o", "/dev/null"])?;
    curl(&[
        "-XDELETE",
        &format!("{url}/_snapshot/{REPOSITORY}"),
        "-o",
        "/dev/null",
    ])
    .ok();
    let location = format!("{repo_path}/{REPOSITORY}");
    std::fs::remove_dir_all(&location).ok();
    curl(&[
        "-XPUT",
        &format!("{url}/_snapshot/{REPOSITORY}"),
        "-d",
        &format!("{{\"type\":\"fs\",\"settings\":{{\"location\":\"{location}\"}}}}"),
        "-o",
        "/dev/null",
    ])?;
    load(&url, mib, &dir)?;
    let bytes = store_bytes(&url)?;
    eprintln!("index set: {:.0} MiB on disk", bytes as f64 / 1048576.0);

    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "stackstate:\n  elasticsearch:\n    restore:\n      repository: {REPOSITORY}\n      scaleDownLabelSelector: kbackup-bench/none=true\n\
             \x20     indexPrefix: {PREFIX}\n      indicesPattern: \"{PREFIX}_*\"\n"
        ),
    )?;
    // `kbackup ... elasticsearch <args> --es-url URL` with the bench configuration.
    let elasticsearch = |args: &[&str]| {
        let mut command = Command::new(&kbackup);
        command
            .args(["-y", "-q", "--no-progress", "-o", "json", "--config"])
            .arg(&config)
            .args([
                "--kubeconfig",
                &kubeconfig,
                "-n",
                NAMESPACE,
                "elasticsearch",
            ])
            .args(args)
            .args(["--es-url", &url]);
        command
    };
    let snapshot = elasticsearch(&[
        "snapshot",
        "--name",
        SNAPSHOT,
        "--indices",
        &format!("{PREFIX}_*"),
        "--wait",
    ])
    .output()?;
    if !snapshot.status.success() {
        bail!(
            "snapshot failed: {}",
            String::from_utf8_lossy(&snapshot.stderr)
        );
    }

    let mut floor: Vec<Sample> = Vec::new();
    let mut ours: Vec<Sample> = Vec::new();
    for round in 0..rounds {
        curl(&["-XDELETE", &format!("{url}/{PREFIX}_*"), "-o", "/dev/null"])?;
        let mut plain = Command::new("curl");
        plain.args([
            "-sS",
            "--fail-with-body",
            "-o",
            "/dev/null",
            "-H",
            "content-type: application/json",
            "-XPOST",
            &format!("{url}/_snapshot/{REPOSITORY}/{SNAPSHOT}/_restore?wait_for_completion=true"),
            "-d",
            &format!("{{\"indices\":\"{PREFIX}_*\",\"include_global_state\":false}}"),
        ]);
        let sample = timed(plain, "the plain _restore call")?;
        eprintln!(
            "round {}/{rounds}: _restore?wait_for_completion=true {:.2}s",
            round + 1,
            sample.seconds
        );
        floor.push(sample);

        let restore = elasticsearch(&["restore", "--snapshot", SNAPSHOT]);
        let sample = timed(restore, "kbackup elasticsearch restore")?;
        eprintln!(
            "round {}/{rounds}: kbackup elasticsearch restore {:.2}s ({:.0} MiB RSS)",
            round + 1,
            sample.seconds,
            sample.max_rss_mib
        );
        ours.push(sample);
    }
    curl(&["-XDELETE", &format!("{url}/{PREFIX}_*"), "-o", "/dev/null"])?;
    curl(&[
        "-XDELETE",
        &format!("{url}/_snapshot/{REPOSITORY}/{SNAPSHOT}"),
        "-o",
        "/dev/null",
    ])
    .ok();

    let (floor, ours) = (median(&floor), median(&ours));
    let mut table = String::new();
    writeln!(
        table,
        "| restore of {:.0} MiB (4 indices, median of {rounds}) | seconds | peak RSS |",
        bytes as f64 / 1048576.0
    )?;
    writeln!(table, "|---|---|---|")?;
    writeln!(
        table,
        "| `POST _snapshot/.../_restore?wait_for_completion=true` into an empty cluster (the floor) | {:.2} | - |",
        floor.seconds
    )?;
    writeln!(
        table,
        "| `kbackup elasticsearch restore` (deletes the 4 live indices first, follows recovery, compares counts) | {:.2} | {:.0} MiB |",
        ours.seconds, ours.max_rss_mib
    )?;
    writeln!(
        table,
        "| **ratio kbackup / floor** | **{:.2}** | |",
        ours.seconds / floor.seconds
    )?;
    let section = format!(
        "## Elasticsearch restore\n\n`cargo xtask bench elasticsearch --size-mib {mib} --rounds {rounds}`: the test Elasticsearch \
         (7.17, one node), an `fs` snapshot repository, random text documents (barely compressible). kbackup's completion is \
         the restored indices turning yellow, seen through a server-side health wait of at most 500 ms per call, so it is \
         seen within half a second of the end of recovery; the floor is Elasticsearch's own blocking call.\n\n{table}"
    );
    println!("{section}");
    write_section(&root.join("docs/benchmarks.md"), "elasticsearch", &section)?;
    Ok(())
}
