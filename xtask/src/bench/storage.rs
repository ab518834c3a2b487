//! `cargo xtask bench storage`: `kbackup storage cp` beside `rclone copyto`.

use super::{Sample, median, timed, write_section};
use crate::testenv::TestEnv;
use anyhow::Result;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;

pub fn run(root: &Path, env: &TestEnv, size_mib: usize, rounds: usize) -> Result<()> {
    super::require_tools(&[("rclone", "rclone"), ("/usr/bin/time", "time")])?;
    let kbackup = super::release_kbackup(root, env)?;
    let endpoint = env.variable("KBACKUP_TEST_S3_ENDPOINT")?;
    let bucket = env.variable("KBACKUP_TEST_S3_BUCKET")?;
    let access_key = env.variable("AWS_ACCESS_KEY_ID")?;
    let secret_key = env.variable("AWS_SECRET_ACCESS_KEY")?;

    let dir = env.root.join("bench");
    std::fs::create_dir_all(&dir)?;
    let payload = dir.join(format!("payload-{size_mib}MiB.bin"));
    if std::fs::metadata(&payload).map(|m| m.len()).ok() != Some((size_mib as u64) << 20) {
        let mut file = std::fs::File::create(&payload)?;
        let chunk = sample_archive(8 << 20);
        for _ in 0..size_mib / 8 {
            file.write_all(&chunk)?;
        }
        file.write_all(&chunk[..(size_mib % 8) << 20])?;
    }
    let download = dir.join("download.bin");

    // Same part size and parallelism for both tools.
    let kb = |args: &[String]| {
        let mut c = Command::new(&kbackup);
        c.args([
            "--no-progress",
            "-q",
            "storage",
            "cp",
            "--part-size",
            "8MiB",
            "--concurrency",
            "4",
        ])
        .args(args);
        c.env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", &access_key)
            .env("AWS_SECRET_ACCESS_KEY", &secret_key);
        c
    };
    let rc = |args: &[String]| {
        let mut c = Command::new("rclone");
        c.args([
            "copyto",
            "--s3-chunk-size",
            "8M",
            "--s3-upload-concurrency",
            "4",
        ])
        .args(args);
        // rclone's AWS SDK reads AWS_* (a CA bundle, say) over its own config: keep it to its config.
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("AWS_")) {
            c.env_remove(name);
        }
        for (k, v) in [
            ("TYPE", "s3".to_owned()),
            ("PROVIDER", "Minio".to_owned()),
            ("ENDPOINT", endpoint.clone()),
            ("ACCESS_KEY_ID", access_key.clone()),
            ("SECRET_ACCESS_KEY", secret_key.clone()),
        ] {
            c.env(format!("RCLONE_CONFIG_BENCH_{k}"), v);
        }
        c
    };
    let p = |path: &Path| path.display().to_string();
    let mut results: Vec<(&str, &str, Vec<Sample>)> = vec![
        ("kbackup", "upload", vec![]),
        ("rclone", "upload", vec![]),
        ("kbackup", "download", vec![]),
        ("rclone", "download", vec![]),
    ];
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        let key = format!("bench/{}-{round}.bin", std::process::id());
        results[0].2.push(timed(
            kb(&[p(&payload), format!("s3://{bucket}/kb-{key}")]),
            "kbackup upload",
        )?);
        results[1].2.push(timed(
            rc(&[p(&payload), format!("bench:{bucket}/rc-{key}")]),
            "rclone upload",
        )?);
        results[2].2.push(timed(
            kb(&[format!("s3://{bucket}/kb-{key}"), p(&download)]),
            "kbackup download",
        )?);
        std::fs::remove_file(&download)?;
        results[3].2.push(timed(
            rc(&[format!("bench:{bucket}/rc-{key}"), p(&download)]),
            "rclone download",
        )?);
        std::fs::remove_file(&download)?;
    }

    let medians: Vec<Sample> = results.iter().map(|r| median(&r.2)).collect();
    let mib_s = |s: &Sample| size_mib as f64 / s.seconds;
    let mut table = String::new();
    writeln!(
        table,
        "| direction | kbackup | rclone | throughput ratio (kbackup / rclone) | kbackup peak RSS | rclone peak RSS |"
    )?;
    writeln!(table, "|---|---|---|---|---|---|")?;
    for (i, direction) in [(0, "upload"), (2, "download")] {
        let (k, r) = (medians[i], medians[i + 1]);
        writeln!(
            table,
            "| {direction} | {:.1} s ({:.0} MiB/s) | {:.1} s ({:.0} MiB/s) | **{:.2}x** | {:.0} MiB | {:.0} MiB |",
            k.seconds,
            mib_s(&k),
            r.seconds,
            mib_s(&r),
            r.seconds / k.seconds,
            k.max_rss_mib,
            r.max_rss_mib
        )?;
    }
    let rclone_version = Command::new("rclone").arg("version").output().map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    })?;
    let section = format!(
        "## Storage: `kbackup storage cp` vs `rclone copyto`\n\n\
         `cargo xtask bench storage --size-mib {size_mib} --rounds {rounds}`: a {size_mib} MiB incompressible file \
         to the test MinIO (127.0.0.1) and back, both tools with 8 MiB parts and 4 parts in flight, \
         rounds alternated, median time, peak RSS over all rounds ({rclone_version}, kbackup release build, \
         {} cores). Goal: ratio >= 0.9 both ways, kbackup peak RSS < 150 MiB.\n\n{table}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("{section}");
    write_section(&root.join("docs/benchmarks.md"), "storage", &section)?;
    eprintln!("written to docs/benchmarks.md");
    Ok(())
}

/// Incompressible sample bytes (xorshift).
fn sample_archive(size: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(size);
    out
}
