//! A backup whose server dies under it commits nothing, and leaves a repository whose earlier
//! snapshots restore and check clean; the next backup completes and reuses what the failed
//! one had stored. On a real MinIO of the test's own, killed in the middle of the uploads.

use backup_testing::PrivateMinio;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BUCKET: &str = "failures";

fn command(home: &Path, minio: &PrivateMinio, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kbackup"));
    for (name, _) in std::env::vars().filter(|(n, _)| {
        n.starts_with("KBACKUP_") || n.starts_with("AWS_") || n.starts_with("AZURE_")
    }) {
        command.env_remove(name);
    }
    command
        .env("HOME", home)
        .env("KBACKUP_PASSWORD", "pw")
        .env("KBACKUP_REPO", format!("s3://{BUCKET}/repo"))
        .env("AWS_ENDPOINT_URL", &minio.endpoint)
        .env("AWS_ACCESS_KEY_ID", &minio.user)
        .env("AWS_SECRET_ACCESS_KEY", &minio.password)
        .env("AWS_REGION", "us-east-1")
        .arg("--no-progress")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn run(home: &Path, minio: &PrivateMinio, args: &[&str]) -> Output {
    command(home, minio, args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeeded(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// Whether MinIO stored any pack (its data directory holds one directory per object).
fn packs_stored(data: &Path) -> usize {
    let dir = data.join(BUCKET).join("repo/data");
    std::fs::read_dir(&dir)
        .map(|shards| {
            shards
                .flatten()
                .map(|s| std::fs::read_dir(s.path()).map_or(0, |p| p.count()))
                .sum()
        })
        .unwrap_or(0)
}

fn wait_for(child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the backup did not end within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// Whether a backup's summary (`N of M chunks new`) says some chunks were already stored.
fn fewer_new_chunks_than_all(stderr: &str) -> bool {
    stderr.lines().any(|line| {
        let Some((before, _)) = line.split_once(" chunks new") else {
            return false;
        };
        let numbers: Vec<u64> = before
            .rsplit(": ")
            .next()
            .unwrap_or_default()
            .split(" of ")
            .filter_map(|n| n.trim().parse().ok())
            .collect();
        matches!(numbers.as_slice(), [new, all] if new < all)
    })
}

#[test]
fn a_backup_whose_server_dies_commits_nothing_and_the_next_one_completes() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("minio");
    let mut minio = PrivateMinio::start(&data, BUCKET);
    succeeded(&run(home.path(), &minio, &["repo", "init"]));
    let small = home.path().join("small");
    std::fs::create_dir(&small).unwrap();
    std::fs::write(small.join("a.txt"), b"the earlier snapshot").unwrap();
    succeeded(&run(
        home.path(),
        &minio,
        &["backup", "path", small.to_str().unwrap()],
    ));
    let before = packs_stored(&data);

    // 128 MB in 4 files: 8 packs of 16 MiB, seconds of uploads.
    let big = home.path().join("big");
    std::fs::create_dir(&big).unwrap();
    for n in 0..4 {
        std::fs::write(
            big.join(format!("f{n}")),
            backup_testing::noise(32_000_000, n),
        )
        .unwrap();
    }
    let child = command(
        home.path(),
        &minio,
        &["backup", "path", big.to_str().unwrap()],
    )
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while packs_stored(&data) <= before {
        assert!(Instant::now() < deadline, "no pack was uploaded in 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    minio.kill();
    let failed = wait_for(child, Duration::from_secs(180));
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed.stderr));
    assert!(
        !text(&failed.stderr).contains("snapshot") || !text(&failed.stderr).contains("saved"),
        "{}",
        text(&failed.stderr)
    );

    minio.restart();
    let list = succeeded(&run(
        home.path(),
        &minio,
        &["-o", "json", "snapshot", "list"],
    ));
    let snapshots: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(snapshots.as_array().unwrap().len(), 1, "{snapshots}");
    succeeded(&run(home.path(), &minio, &["repo", "check", "--read-data"]));
    let target = home.path().join("restored");
    let earlier = format!("latest:{}", small.display());
    let args = [
        "restore",
        "path",
        &earlier,
        "--target",
        target.to_str().unwrap(),
    ];
    succeeded(&run(home.path(), &minio, &args));
    assert_eq!(
        std::fs::read(target.join("a.txt")).unwrap(),
        b"the earlier snapshot"
    );

    // The next backup of the same data completes, reusing the packs the failed one stored.
    let again = run(
        home.path(),
        &minio,
        &["backup", "path", big.to_str().unwrap()],
    );
    succeeded(&again);
    // The packs come back either adopted (uploaded, never indexed) or through an index
    // object the failed backup wrote before the server died: which one depends on how far
    // it got, so both count, as long as data is reused.
    let stderr = text(&again.stderr);
    assert!(
        stderr.contains("interrupted backup") || fewer_new_chunks_than_all(&stderr),
        "{stderr}"
    );
    let whole = home.path().join("whole");
    let latest = format!("latest:{}", big.display());
    succeeded(&run(
        home.path(),
        &minio,
        &[
            "restore",
            "path",
            &latest,
            "--target",
            whole.to_str().unwrap(),
        ],
    ));
    for n in 0..4 {
        assert_eq!(
            std::fs::read(whole.join(format!("f{n}"))).unwrap(),
            backup_testing::noise(32_000_000, n)
        );
    }
    succeeded(&run(home.path(), &minio, &["repo", "check", "--read-data"]));
}
