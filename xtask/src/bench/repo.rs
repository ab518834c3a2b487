//! `cargo xtask bench repo`: `kbackup backup path` / `restore path` beside restic (the Debian
//! package) on the same 2 GiB of mixed files, into a local directory and into the test MinIO:
//! first backup, second backup of unchanged data, restore, repository size, peak memory.

use super::{Sample, median, timed, write_section};
use crate::testenv::TestEnv;
use anyhow::{Result, bail};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// Bumped when the generated data changes (the cached copy is then rebuilt).
const DATA_VERSION: &str = "mixed-v1";

/// xorshift64*: deterministic, fast data.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Random bytes (incompressible) or text over 16 letters (compresses to about half).
    fn fill(&mut self, out: &mut Vec<u8>, len: usize, text: bool) {
        const LETTERS: &[u8; 16] = b"etaoin shrdlu\ncm";
        out.clear();
        out.reserve(len);
        while out.len() < len {
            let word = self.next().to_le_bytes();
            if text {
                for b in word {
                    out.push(LETTERS[(b & 15) as usize]);
                    out.push(LETTERS[(b >> 4) as usize]);
                }
            } else {
                out.extend_from_slice(&word);
            }
        }
        out.truncate(len);
    }
}

/// 2 GiB of mixed files: 16,000 small text files (0.5-24 KiB) in 100 directories, 60 medium
/// files (4-12 MiB, half text), 3 large files of 450 MiB (alternating random and text MiBs).
pub(super) fn generate(dir: &Path) -> Result<()> {
    let marker = dir.join(".generated");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(DATA_VERSION) {
        return Ok(());
    }
    eprintln!("generating the benchmark data in {}", dir.display());
    std::fs::remove_dir_all(dir).ok();
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let mut buffer = Vec::new();
    for d in 0..100 {
        let sub = dir.join(format!("small/{d:03}"));
        std::fs::create_dir_all(&sub)?;
        for f in 0..160 {
            let len = 512 + (noise.next() % (24 * 1024 - 512)) as usize;
            noise.fill(&mut buffer, len, true);
            std::fs::write(sub.join(format!("file-{f:03}.txt")), &buffer)?;
        }
    }
    std::fs::create_dir_all(dir.join("medium"))?;
    for m in 0..60 {
        let len = (4 << 20) + (noise.next() % (8 << 20)) as usize;
        noise.fill(&mut buffer, len, m % 2 == 0);
        std::fs::write(dir.join(format!("medium/part-{m:02}.dat")), &buffer)?;
    }
    std::fs::create_dir_all(dir.join("large"))?;
    for l in 0..3 {
        let mut file = std::fs::File::create(dir.join(format!("large/blob-{l}.img")))?;
        for mib in 0..450 {
            noise.fill(&mut buffer, 1 << 20, mib % 2 == 1);
            file.write_all(&buffer)?;
        }
    }
    std::fs::write(&marker, DATA_VERSION)?;
    Ok(())
}

/// The tools compared, in the order of the results.
const TOOLS: [&str; 2] = ["restic", "kbackup"];

/// Where `tool`'s restore number `run` goes.
fn restore_dir(work: &Path, tool: usize, run: usize) -> std::path::PathBuf {
    work.join(format!("restore-{}-{run}", TOOLS[tool]))
}

pub(super) fn bytes_under(dir: &Path) -> Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if entry.file_name() != ".generated" {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    Ok((files, bytes))
}

/// The five measurements of one tool on one backend.
#[derive(Default)]
struct Runs {
    first: Vec<Sample>,
    second: Vec<Sample>,
    restore: Vec<Sample>,
    size: u64,
}

pub fn run(root: &Path, env: &TestEnv, rounds: usize) -> Result<()> {
    super::require_tools(&[("restic", "restic"), ("/usr/bin/time", "time")])?;
    let kbackup = super::release_kbackup(root, env)?;
    let endpoint = env.variable("KBACKUP_TEST_S3_ENDPOINT")?;
    let bucket = env.variable("KBACKUP_TEST_S3_BUCKET")?;
    let access_key = env.variable("AWS_ACCESS_KEY_ID")?;
    let secret_key = env.variable("AWS_SECRET_ACCESS_KEY")?;
    let bench = env.root.join("bench/repo");
    let data = bench.join("data");
    generate(&data)?;
    let (files, bytes) = bytes_under(&data)?;
    eprintln!(
        "{files} files, {:.2} GiB",
        bytes as f64 / f64::from(1 << 30)
    );
    let work = bench.join("work");
    let source = data.display().to_string();

    let restic = |repo: &str, args: &[&str]| {
        let mut c = Command::new("restic");
        c.args(["-r", repo, "--quiet"]).args(args);
        c.env("RESTIC_PASSWORD", "bench")
            .env("RESTIC_CACHE_DIR", work.join("restic-cache"))
            .env("AWS_ACCESS_KEY_ID", &access_key)
            .env("AWS_SECRET_ACCESS_KEY", &secret_key)
            .stdout(Stdio::null());
        c
    };
    let kb = |repo: &str, args: &[&str]| {
        let mut c = Command::new(&kbackup);
        c.args(["-q", "--no-progress"]).args(args);
        c.env("KBACKUP_PASSWORD", "bench")
            .env("KBACKUP_REPO", repo)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", &access_key)
            .env("AWS_SECRET_ACCESS_KEY", &secret_key)
            .stdout(Stdio::null());
        c
    };
    let backends = ["local disk", "MinIO"];
    let mut results: Vec<[Runs; 2]> = (0..2).map(|_| Default::default()).collect();
    for round in 0..rounds {
        for (b, backend) in backends.iter().enumerate() {
            std::fs::remove_dir_all(&work).ok();
            std::fs::create_dir_all(&work)?;
            let prefix = format!("bench-repo-{}-{round}", std::process::id());
            let (restic_repo, kbackup_repo) = match b {
                0 => (
                    work.join("restic").display().to_string(),
                    format!("file://{}", work.join("kbackup").display()),
                ),
                _ => (
                    format!("s3:{endpoint}/{bucket}/{prefix}-restic"),
                    format!("s3://{bucket}/{prefix}-kbackup"),
                ),
            };
            eprintln!("round {}/{rounds}, {backend}", round + 1);
            let steps: [(usize, Command, Command); 2] = [
                (
                    0,
                    restic(&restic_repo, &["backup", &source]),
                    kb(&kbackup_repo, &["backup", "path", &source]),
                ),
                (
                    1,
                    restic(&restic_repo, &["backup", &source]),
                    kb(&kbackup_repo, &["backup", "path", &source]),
                ),
            ];
            if !restic(&restic_repo, &["init"]).status()?.success()
                || !kb(&kbackup_repo, &["repo", "init"]).status()?.success()
            {
                bail!("init failed on {backend}");
            }
            for (step, restic_command, kbackup_command) in steps {
                let names = ["first backup", "second backup"];
                let r = timed(restic_command, &format!("restic {}", names[step]))?;
                let k = timed(kbackup_command, &format!("kbackup {}", names[step]))?;
                eprintln!(
                    "  {}: restic {:.2}s ({:.0} MiB), kbackup {:.2}s ({:.0} MiB)",
                    names[step], r.seconds, r.max_rss_mib, k.seconds, k.max_rss_mib
                );
                for (runs, sample) in results[b].iter_mut().zip([r, k]) {
                    match step {
                        0 => runs.first.push(sample),
                        _ => runs.second.push(sample),
                    }
                }
            }
            // Restores in the order restic, kbackup, kbackup, restic. Each adds 16,000 files
            // beside the earlier ones and creating files gets dearer as the file system fills
            // (ext4 scans more inode bitmap and table blocks): the same kbackup build took
            // 5.0 s restoring first and 10.1 s right after restic's restore. In this order both
            // tools hold the same positions on average; each one's time is the mean of its two
            // runs, its peak RSS the larger.
            let component = format!("latest:{source}");
            let mut restores: [Vec<Sample>; 2] = Default::default();
            for (run, tool) in [(0, 0), (0, 1), (1, 1), (1, 0)] {
                let target = restore_dir(&work, tool, run).display().to_string();
                let command = match tool {
                    0 => restic(&restic_repo, &["restore", "latest", "--target", &target]),
                    _ => kb(
                        &kbackup_repo,
                        &["restore", "path", &component, "--target", &target],
                    ),
                };
                restores[tool].push(timed(command, &format!("{} restore", TOOLS[tool]))?);
                let restored = match tool {
                    0 => Path::new(&target).join(source.trim_start_matches('/')),
                    _ => target.into(),
                };
                let found = bytes_under(&restored)?;
                if found != (files, bytes) {
                    bail!(
                        "{} restore {run} is incomplete on {backend}: {found:?}, expected {:?}",
                        TOOLS[tool],
                        (files, bytes)
                    );
                }
            }
            let [r, k] = restores.map(|runs| Sample {
                seconds: runs.iter().map(|s| s.seconds).sum::<f64>() / runs.len() as f64,
                max_rss_mib: runs.iter().map(|s| s.max_rss_mib).fold(0.0, f64::max),
            });
            eprintln!(
                "  restore (mean of 2): restic {:.2}s ({:.0} MiB), kbackup {:.2}s ({:.0} MiB)",
                r.seconds, r.max_rss_mib, k.seconds, k.max_rss_mib
            );
            results[b][0].restore.push(r);
            results[b][1].restore.push(k);
            if b == 0 {
                results[b][0].size = bytes_under(&work.join("restic"))?.1;
                results[b][1].size = bytes_under(&work.join("kbackup"))?.1;
            } else {
                // The test MinIO keeps a prefix as a directory of its data: 4 GiB per round
                // otherwise stays on the disk.
                for repo in ["restic", "kbackup"] {
                    let stored = env.data("minio").join(&bucket);
                    std::fs::remove_dir_all(stored.join(format!("{prefix}-{repo}"))).ok();
                }
            }
        }
    }
    std::fs::remove_dir_all(&work).ok();

    let mut table = String::new();
    writeln!(
        table,
        "| backend | step | restic s | kbackup s | ratio (kbackup / restic) | goal | restic peak RSS | kbackup peak RSS |"
    )?;
    writeln!(table, "|---|---|---|---|---|---|---|---|")?;
    for (b, backend) in backends.iter().enumerate() {
        let [restic_runs, kbackup_runs] = &results[b];
        for (name, goal, r, k) in [
            ("first backup", 0.7, &restic_runs.first, &kbackup_runs.first),
            (
                "second backup (unchanged)",
                0.5,
                &restic_runs.second,
                &kbackup_runs.second,
            ),
            ("restore", 0.7, &restic_runs.restore, &kbackup_runs.restore),
        ] {
            let (r, k) = (median(r), median(k));
            writeln!(
                table,
                "| {backend} | {name} | {:.2} | {:.2} | **{:.2}** | <= {goal} | {:.0} MiB | {:.0} MiB |",
                r.seconds,
                k.seconds,
                k.seconds / r.seconds,
                r.max_rss_mib,
                k.max_rss_mib
            )?;
        }
    }
    let [restic_local, kbackup_local] = &results[0];
    writeln!(
        table,
        "\nRepository size on local disk after the two backups: restic {:.0} MiB, kbackup {:.0} MiB: **{:.3}x** (goal <= 1.05x).",
        restic_local.size as f64 / f64::from(1 << 20),
        kbackup_local.size as f64 / f64::from(1 << 20),
        kbackup_local.size as f64 / restic_local.size as f64
    )?;
    let section = format!(
        "## Repository (file trees)\n\n`cargo xtask bench repo --rounds {rounds}`: {files} files, {:.2} GiB (16,000 small text files, \
         60 medium files half text, 3 large files alternating random and text MiBs), restic {} (Debian) beside kbackup, same \
         data, same machine, fresh repositories each round, restic with its default cache. Backups: restic then kbackup. \
         Restores: restic, kbackup, kbackup, restic (creating files slows down as the file system fills: the second restore \
         of a round is slower than the first whoever runs it), each tool's time the mean of its two. Medians of {rounds} round(s).\n\n{table}",
        bytes as f64 / f64::from(1 << 30),
        super::restic_version(Path::new("restic"))
    );
    println!("{section}");
    write_section(&root.join("docs/benchmarks.md"), "repo", &section)?;
    Ok(())
}
