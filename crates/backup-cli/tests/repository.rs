//! The kbackup repository through the real binary: init, backup from stdin, list, cat; on a
//! local directory, the test MinIO and the test Azurite.

mod common;

use common::{assert_refused, text};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn kbackup(
    home: &Path,
    repo: &str,
    password: Option<&str>,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kbackup"));
    for (name, _) in std::env::vars().filter(|(n, _)| {
        n.starts_with("AWS_") || n.starts_with("AZURE_") || n.starts_with("KBACKUP_")
    }) {
        command.env_remove(name);
    }
    if repo.starts_with("s3://") {
        let server = backup_testing::s3();
        command
            .env("AWS_ENDPOINT_URL", server.endpoint)
            .env("AWS_ACCESS_KEY_ID", server.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", server.secret_access_key);
    }
    if repo.starts_with("az://") {
        let server = backup_testing::azure();
        command
            .env("AZURE_STORAGE_ENDPOINT", server.endpoint)
            .env("AZURE_STORAGE_ACCOUNT_NAME", server.account)
            .env("AZURE_STORAGE_ACCOUNT_KEY", server.key);
    }
    if let Some(password) = password {
        command.env("KBACKUP_PASSWORD", password);
    }
    command
        .env("HOME", home)
        .env("KBACKUP_REPO", repo)
        .arg("--no-progress")
        .args(args);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn round_trip(repo: &str) {
    let home = tempfile::tempdir().unwrap();
    let run =
        |args: &[&str], stdin: Option<&[u8]>| kbackup(home.path(), repo, Some("pw"), args, stdin);
    let init = run(&["repo", "init"], None);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let again = run(&["repo", "init"], None);
    assert_refused(&again, "already holds a kbackup repository");

    let payload = backup_testing::noise(3_000_000, 0x2545_F491_4F6C_DD1D);
    let first = run(
        &[
            "backup", "stdin", "--name", "dump", "--tag", "daily", "--label", "env=prod",
        ],
        Some(&payload),
    );
    assert!(first.status.success(), "{}", text(&first.stderr));
    let second = run(&["backup", "stdin", "--name", "dump"], Some(&payload));
    assert!(
        text(&second.stderr).contains("0 B added"),
        "unchanged data adds nothing: {}",
        text(&second.stderr)
    );

    let list = run(&["-o", "json", "snapshot", "list"], None);
    let snapshots: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(snapshots.len(), 2);
    assert_eq!(snapshots[0]["labels"]["env"], "prod");
    assert_eq!(snapshots[0]["tags"][0], "daily");
    assert_eq!(snapshots[0]["size"], payload.len());

    let id = text(&first.stdout).trim().to_owned();
    for target in [format!("{}:dump", &id[..8]), "latest:dump".to_string()] {
        let cat = run(&["snapshot", "cat", &target], None);
        assert!(cat.status.success(), "{}", text(&cat.stderr));
        assert!(cat.stdout == payload, "{target}: restored bytes differ");
    }
    let missing = run(&["snapshot", "cat", "latest:nothing"], None);
    assert_refused(&missing, "no stream component 'nothing'");

    // Labels: `latest` is the newest of the snapshots having them.
    let other = backup_testing::noise(100_000, 7);
    let staging = run(
        &[
            "backup",
            "stdin",
            "--name",
            "dump",
            "--label",
            "env=staging",
        ],
        Some(&other),
    );
    assert!(staging.status.success(), "{}", text(&staging.stderr));
    for (filter, expected) in [(None, &other), (Some("env=prod"), &payload)] {
        let mut args = vec!["snapshot", "cat", "latest:dump"];
        args.extend(filter.iter().flat_map(|f| ["--label", *f]));
        let cat = run(&args, None);
        assert!(cat.status.success(), "{}", text(&cat.stderr));
        assert!(&cat.stdout == expected, "{filter:?}: wrong snapshot");
    }
    let list = run(
        &["-o", "json", "snapshot", "list", "--label", "env=staging"],
        None,
    );
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["labels"]["env"], "staging");
    let unknown = run(
        &["snapshot", "cat", "latest:dump", "--label", "env=dev"],
        None,
    );
    assert_refused(&unknown, "no snapshot 'latest' with label env=dev");
    for bad in ["novalue", "kbackup.io/objects=1"] {
        let refused = run(
            &["backup", "stdin", "--name", "x", "--label", bad],
            Some(b"x"),
        );
        assert_eq!(refused.status.code(), Some(1), "{bad}");
    }

    let wrong = kbackup(
        home.path(),
        repo,
        Some("not-it"),
        &["snapshot", "list"],
        None,
    );
    assert_refused(&wrong, "wrong password");
    let none = kbackup(home.path(), repo, None, &["snapshot", "list"], None);
    assert_refused(&none, "KBACKUP_PASSWORD");
}

#[test]
fn round_trip_on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(&format!("file://{}/repo", dir.path().display()));
}

#[test]
fn check_names_a_damaged_pack() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("repo");
    let repo = format!("file://{}", dir.display());
    let run =
        |args: &[&str], stdin: Option<&[u8]>| kbackup(home.path(), &repo, Some("pw"), args, stdin);
    assert!(run(&["repo", "init"], None).status.success());
    assert!(
        run(
            &["backup", "stdin", "--name", "dump"],
            Some(&backup_testing::noise(500_000, 0x2545_F491_4F6C_DD1D))
        )
        .status
        .success()
    );
    let pack = walk(&dir.join("data")).into_iter().next().expect("a pack");
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[50] ^= 0x10;
    std::fs::write(&pack, bytes).unwrap();
    assert!(
        run(&["repo", "check"], None).status.success(),
        "a structural check reads no data"
    );
    let bad = run(&["repo", "check", "--read-data=150%"], None);
    assert_eq!(bad.status.code(), Some(1), "not a percentage");
    // One pack: any subset above 0% reads it.
    let subset = run(&["repo", "check", "--read-data=1%"], None);
    assert_eq!(subset.status.code(), Some(1), "{}", text(&subset.stderr));
    let check = run(&["repo", "check", "--read-data"], None);
    assert_eq!(check.status.code(), Some(1));
    let name = pack.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        text(&check.stderr).contains(&name) && text(&check.stderr).contains("problem"),
        "{}",
        text(&check.stderr)
    );
    let cat = run(&["snapshot", "cat", "latest:dump"], None);
    assert_eq!(
        cat.status.code(),
        Some(1),
        "restore refuses damaged data too"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path))
        } else {
            files.push(path)
        }
    }
    files
}

#[test]
fn round_trip_on_minio() {
    round_trip(&format!(
        "s3://{}/{}",
        backup_testing::s3().bucket,
        backup_testing::unique_name("repo")
    ));
}

#[test]
fn round_trip_on_azurite() {
    round_trip(&format!(
        "az://{}/{}",
        backup_testing::azure().container,
        backup_testing::unique_name("repo")
    ));
}

#[test]
fn keys_info_and_snapshot_delete_through_the_binary() {
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("repo");
    let repo = repo.to_str().unwrap();
    let run = |password: &str, args: &[&str], stdin: Option<&[u8]>| {
        kbackup(home.path(), repo, Some(password), args, stdin)
    };
    assert!(run("old", &["repo", "init"], None).status.success());
    let new_file = home.path().join("new-password");
    std::fs::write(&new_file, "second\n").unwrap();
    let new_file = new_file.to_str().unwrap();
    let added = run(
        "old",
        &["repo", "key", "add", "--new-password-file", new_file],
        None,
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    let list = run("second", &["-o", "json", "repo", "key", "list"], None);
    let keys: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(keys.len(), 2);
    let old_key = keys.iter().find(|k| k["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let in_use = keys.iter().find(|k| k["current"] == true).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = run("second", &["-y", "repo", "key", "remove", &in_use], None);
    assert_eq!(refused.status.code(), Some(1), "the key in use stays");
    let removed = run("second", &["-y", "repo", "key", "remove", &old_key], None);
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    assert_eq!(
        run("old", &["snapshot", "list"], None).status.code(),
        Some(1),
        "the old password no longer opens it"
    );
    std::fs::write(home.path().join("new-password"), "third\n").unwrap();
    let changed = run(
        "second",
        &["repo", "key", "passwd", "--new-password-file", new_file],
        None,
    );
    assert!(changed.status.success(), "{}", text(&changed.stderr));
    assert_eq!(
        run("second", &["snapshot", "list"], None).status.code(),
        Some(1)
    );
    let stdout = run(
        "third",
        &["backup", "stdin", "--name", "data"],
        Some(b"some bytes"),
    );
    assert!(stdout.status.success(), "{}", text(&stdout.stderr));
    let info = run("third", &["-o", "json", "repo", "info"], None);
    let info: Vec<serde_json::Value> = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(
        (info[0]["keys"].as_u64(), info[0]["snapshots"].as_u64()),
        (Some(1), Some(1))
    );
    let deleted = run("third", &["-y", "snapshot", "delete", "latest"], None);
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    let planned = run(
        "third",
        &["-o", "json", "repo", "prune", "--grace", "0s", "--dry-run"],
        None,
    );
    let planned: Vec<serde_json::Value> = serde_json::from_slice(&planned.stdout).unwrap();
    assert_eq!(planned[0]["packsMarked"], 1, "the deleted snapshot's pack");
    // Two phases: the first prune marks the pack, a prune after the grace period deletes it.
    let prune = || {
        run(
            "third",
            &["-y", "-o", "json", "repo", "prune", "--grace", "0s"],
            None,
        )
    };
    let marked = prune();
    assert!(marked.status.success(), "{}", text(&marked.stderr));
    let marked: Vec<serde_json::Value> = serde_json::from_slice(&marked.stdout).unwrap();
    assert_eq!(
        (
            marked[0]["packsMarked"].as_u64(),
            marked[0]["packsDeleted"].as_u64()
        ),
        (Some(1), Some(0))
    );
    let pruned = prune();
    assert!(pruned.status.success(), "{}", text(&pruned.stderr));
    let pruned: Vec<serde_json::Value> = serde_json::from_slice(&pruned.stdout).unwrap();
    assert_eq!(pruned[0]["packsDeleted"], 1);
    let info = run("third", &["-o", "json", "repo", "info"], None);
    let info: Vec<serde_json::Value> = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info[0]["packs"], 0, "nothing left to store");
    let list = run("third", &["-o", "json", "snapshot", "list"], None);
    assert_eq!(text(&list.stdout).trim(), "[]");
    let missing = run("third", &["-y", "snapshot", "delete", "latest"], None);
    assert_eq!(missing.status.code(), Some(1), "nothing left to delete");
}

fn tree_round_trip(repo: &str) {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| kbackup(home.path(), repo, Some("pw"), args, None);
    assert!(run(&["repo", "init"]).status.success());
    let source = home.path().join("data");
    std::fs::create_dir_all(source.join("sub/deeper")).unwrap();
    std::fs::write(source.join("a.txt"), b"alpha").unwrap();
    std::fs::write(source.join("scratch.tmp"), b"left out").unwrap();
    std::fs::write(
        source.join("sub/deeper/big.bin"),
        backup_testing::noise(2_500_000, 11),
    )
    .unwrap();
    std::os::unix::fs::symlink("../a.txt", source.join("sub/link")).unwrap();
    let dir = source.to_str().unwrap();

    let first = run(&[
        "-o",
        "json",
        "backup",
        "path",
        dir,
        "--tag",
        "daily",
        "--exclude",
        "*.tmp",
    ]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(rows[0]["files"], 2, "{rows}");
    assert_eq!(rows[0]["filesRead"], 2);
    let second = run(&["-o", "json", "backup", "path", dir, "--exclude", "*.tmp"]);
    let rows: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(
        (
            rows[0]["filesRead"].as_u64(),
            rows[0]["filesUnchanged"].as_u64()
        ),
        (Some(0), Some(2)),
        "{rows}"
    );

    let target = home.path().join("restored");
    let one = format!("latest:{dir}");
    let restored = run(&[
        "restore",
        "path",
        &one,
        "--target",
        target.to_str().unwrap(),
    ]);
    assert!(restored.status.success(), "{}", text(&restored.stderr));
    assert_eq!(std::fs::read(target.join("a.txt")).unwrap(), b"alpha");
    assert_eq!(
        std::fs::read(target.join("sub/deeper/big.bin")).unwrap(),
        backup_testing::noise(2_500_000, 11)
    );
    assert_eq!(
        std::fs::read_link(target.join("sub/link")).unwrap(),
        Path::new("../a.txt")
    );
    assert!(!target.join("scratch.tmp").exists());

    let again = run(&[
        "restore",
        "path",
        &one,
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_refused(&again, "--overwrite");

    // By tag: the first snapshot; every directory at TARGET/<original path>.
    let all = home.path().join("all");
    let tagged = run(&[
        "restore",
        "path",
        "latest",
        "--tag",
        "daily",
        "--target",
        all.to_str().unwrap(),
    ]);
    assert!(tagged.status.success(), "{}", text(&tagged.stderr));
    assert!(all.join(dir.trim_start_matches('/')).join("a.txt").exists());
    let none = run(&[
        "restore",
        "path",
        "latest",
        "--tag",
        "weekly",
        "--target",
        all.to_str().unwrap(),
    ]);
    assert_refused(&none, "no snapshot");
    let missing = run(&["backup", "path", "/no/such/dir"]);
    assert_refused(&missing, "/no/such/dir");

    let check = run(&["repo", "check", "--read-data"]);
    assert!(check.status.success(), "{}", text(&check.stderr));
}

#[test]
fn directory_trees_on_a_local_directory() {
    let repo = tempfile::tempdir().unwrap();
    tree_round_trip(&format!("file://{}", repo.path().join("r").display()));
}

#[test]
fn directory_trees_on_minio() {
    let server = backup_testing::s3();
    tree_round_trip(&format!(
        "s3://{}/{}",
        server.bucket,
        backup_testing::unique_name("trees")
    ));
}

#[test]
fn directory_trees_on_azurite() {
    tree_round_trip(&format!(
        "az://{}/{}",
        backup_testing::azure().container,
        backup_testing::unique_name("trees")
    ));
}

/// `kill -9` at points spread over backups and prunes (a different point each trial): every
/// listed snapshot stays restorable (`check --read-data` verifies that each one's chunks are
/// indexed and every pack decodes), the latest restores, and the next backup succeeds.
#[test]
fn killed_backups_and_prunes_leave_a_sound_repository() {
    const TRIALS: u64 = 8;
    let home = tempfile::tempdir().unwrap();
    let repo = format!("file://{}", home.path().join("r").display());
    let run = |args: &[&str]| kbackup(home.path(), &repo, Some("pw"), args, None);
    let spawn = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kbackup"))
            .env("HOME", home.path())
            .env("KBACKUP_REPO", &repo)
            .env("KBACKUP_PASSWORD", "pw")
            .args(["--no-progress", "-q", "-y"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    assert!(run(&["repo", "init"]).status.success());
    let data = home.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for n in 0..4 {
        std::fs::write(
            data.join(format!("base-{n}")),
            backup_testing::noise(3_000_000, n),
        )
        .unwrap();
    }
    let dir = data.to_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    assert!(run(&["backup", "path", &dir]).status.success());
    let full = started.elapsed();
    let mut killed_mid_way = 0;
    for trial in 0..TRIALS {
        std::fs::write(
            data.join(format!("new-{trial}")),
            backup_testing::noise(3_000_000, 100 + trial),
        )
        .unwrap();
        // Spread over the whole run, plus a few milliseconds of jitter from the clock.
        let jitter = u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
                % 7,
        );
        let at = full.mul_f64((trial as f64 + 0.5) / TRIALS as f64)
            + std::time::Duration::from_millis(jitter);
        // --force: every file read, so each run lasts at least as long as the first.
        let mut child = spawn(&["backup", "path", "--force", &dir]);
        std::thread::sleep(at);
        if child.try_wait().unwrap().is_none() {
            killed_mid_way += 1;
        }
        child.kill().ok();
        child.wait().unwrap();
        if trial % 2 == 1 {
            assert!(
                run(&["-y", "snapshot", "forget", "--keep-last", "2"])
                    .status
                    .success()
            );
            let mut prune = spawn(&["repo", "prune", "--grace", "0s"]);
            std::thread::sleep(at / 4);
            prune.kill().ok();
            prune.wait().unwrap();
        }
        let check = run(&["repo", "check", "--read-data"]);
        assert!(
            check.status.success(),
            "trial {trial}: {}{}",
            text(&check.stdout),
            text(&check.stderr)
        );
        let target = home.path().join(format!("restored-{trial}"));
        let restored = run(&[
            "restore",
            "path",
            "latest",
            "--target",
            target.to_str().unwrap(),
        ]);
        assert!(
            restored.status.success(),
            "trial {trial}: {}",
            text(&restored.stderr)
        );
    }
    assert!(
        killed_mid_way >= TRIALS / 2,
        "only {killed_mid_way} runs were killed before they ended"
    );
    // A prune run to completion twice (mark, then delete), then a backup: all sound.
    for _ in 0..2 {
        assert!(
            run(&["-y", "repo", "prune", "--grace", "0s"])
                .status
                .success()
        );
    }
    let last = run(&["backup", "path", &dir]);
    assert!(last.status.success(), "{}", text(&last.stderr));
    let target = home.path().join("final");
    let one = format!("latest:{dir}");
    assert!(
        run(&[
            "restore",
            "path",
            &one,
            "--target",
            target.to_str().unwrap()
        ])
        .status
        .success()
    );
    for entry in std::fs::read_dir(&data).unwrap() {
        let entry = entry.unwrap();
        assert_eq!(
            std::fs::read(entry.path()).unwrap(),
            std::fs::read(target.join(entry.file_name())).unwrap()
        );
    }
    assert!(run(&["repo", "check", "--read-data"]).status.success());
}
