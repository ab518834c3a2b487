//! `kbackup restore path` on crafted and damaged snapshots: nothing is ever written, chmod-ed
//! or chown-ed outside `--target`, an existing target keeps its own metadata, nested trees of
//! one snapshot restore, and a failed `--overwrite` leaves the user's files intact.
//! Snapshots are crafted with the repository library in a local repository made by the
//! binary.

use backup_core::RepositoryLocation;
use backup_repository::tree::TreeContent;
use backup_repository::{Repository, SnapshotFile, StreamContent};
use backup_storage::StorageOptions;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A home with a local repository (password `pw`) and a directory outside any target.
struct Setup {
    home: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let setup = Self {
            home: tempfile::tempdir().unwrap(),
        };
        let init = setup.kbackup(&["repo", "init", "--kdf-memory", "19MiB", "--kdf-passes", "2"]);
        assert!(init.status.success(), "{}", text(&init.stderr));
        std::fs::create_dir(setup.outside()).unwrap();
        std::fs::set_permissions(setup.outside(), std::fs::Permissions::from_mode(0o750)).unwrap();
        setup
    }

    fn repo_dir(&self) -> PathBuf {
        self.home.path().join("repo")
    }

    fn outside(&self) -> PathBuf {
        self.home.path().join("outside")
    }

    fn target(&self) -> PathBuf {
        self.home.path().join("target")
    }

    fn kbackup(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kbackup"));
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("KBACKUP_")) {
            command.env_remove(name);
        }
        command
            .env("HOME", self.home.path())
            .env("KBACKUP_PASSWORD", "pw")
            .env(
                "KBACKUP_REPO",
                format!("file://{}", self.repo_dir().display()),
            )
            .arg("--no-progress")
            .args(args)
            .output()
            .unwrap()
    }

    fn restore(&self, args: &[&str]) -> Output {
        let target = self.target();
        let mut all = vec!["restore", "path"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--target", target.to_str().unwrap()]);
        self.kbackup(&all)
    }

    async fn repository(&self) -> Repository {
        let location =
            RepositoryLocation::parse(&format!("file://{}", self.repo_dir().display())).unwrap();
        let storage = backup_storage::open(&location, &StorageOptions::default())
            .await
            .unwrap();
        Repository::open(storage, b"pw").await.unwrap()
    }

    /// Writes a snapshot of the given trees: (name, listing lines with `{outside}` and
    /// `{chunks}` replaced by the outside directory and the chunks of `content`).
    async fn snapshot(&self, trees: &[(&str, &str)], content: &[u8]) {
        let repo = self.repository().await;
        let (data, _) = repo.backup_stream("content", content).await.unwrap();
        let chunks = serde_json::to_string(&data.chunks).unwrap();
        let mut contents = Vec::new();
        for (name, listing) in trees {
            let listing = listing
                .replace("{outside}", self.outside().to_str().unwrap())
                .replace("{chunks}", &chunks)
                .replace("{size}", &content.len().to_string());
            let (stream, _) = repo
                .backup_stream("listing", listing.as_bytes())
                .await
                .unwrap();
            contents.push(TreeContent {
                name: (*name).into(),
                listing: StreamContent {
                    name: "listing".into(),
                    ..stream
                },
                files: 1,
                dirs: 1,
                bytes: content.len() as u64,
            });
        }
        let snapshot = backup_core::Snapshot {
            id: backup_core::SnapshotId::parse("00000000").unwrap(),
            time: chrono::Utc::now(),
            source: "crafted".into(),
            tags: Default::default(),
            labels: Default::default(),
            components: vec![],
            totals: Default::default(),
        };
        repo.write_snapshot(SnapshotFile {
            snapshot,
            streams: vec![],
            trees: contents,
        })
        .await
        .unwrap();
    }

    /// The outside directory is as it was made: empty, mode 0750.
    fn assert_outside_untouched(&self) {
        let entries: Vec<_> = std::fs::read_dir(self.outside())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            entries.is_empty(),
            "written outside the target: {entries:?}"
        );
        let mode = std::fs::metadata(self.outside()).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o750, "outside directory re-stamped");
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_failed(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(needle), "{}", text(&out.stderr));
}

/// One listing line; `extra` adds fields (`"target":...`, `"chunks":...`).
fn node(path: &str, kind: &str, mode: u32, extra: &str) -> String {
    format!(
        r#"{{"path":"{path}","type":"{kind}","mode":{mode},"uid":{uid},"gid":{gid},"mtime":1600000000,"mtimeNsec":0,"ctime":0,"ctimeNsec":0,"inode":1{extra}}}"#,
        uid = own_ids().0,
        gid = own_ids().1,
    ) + "\n"
}

/// The test's own user and group (restoring them needs no privilege).
fn own_ids() -> (u32, u32) {
    let own = std::fs::metadata("/proc/self").unwrap();
    (own.uid(), own.gid())
}

const FILE: &str = r#","size":{size},"chunks":{chunks}"#;

#[tokio::test]
async fn links_below_a_symlink_of_the_tree_are_not_followed() {
    let setup = Setup::new();
    let listing = [
        node("", "dir", 0o755, ""),
        node("f", "file", 0o644, FILE),
        node("s", "symlink", 0o777, r#","target":"{outside}""#),
        node("s/x", "file", 0o644, FILE),
        node("s/h", "hardlink", 0o644, &format!(r#","target":"f"{FILE}"#)),
        node("s/l", "symlink", 0o777, r#","target":"/etc/passwd""#),
    ]
    .concat();
    setup.snapshot(&[("/evil", &listing)], b"payload").await;
    let out = setup.restore(&["latest:/evil"]);
    assert_failed(&out, "not below a directory");
    setup.assert_outside_untouched();
}

#[tokio::test]
async fn a_tree_name_with_dot_dot_is_refused() {
    let setup = Setup::new();
    let listing = [
        node("", "dir", 0o777, ""),
        node("pwned", "file", 0o644, FILE),
    ]
    .concat();
    // TARGET/../outside is the outside directory.
    setup
        .snapshot(&[("/../outside", &listing)], b"payload")
        .await;
    let out = setup.restore(&["latest"]);
    assert_failed(&out, "not a plain absolute path");
    setup.assert_outside_untouched();
}

#[tokio::test]
async fn a_symlink_planted_by_one_tree_is_not_followed_by_another() {
    let setup = Setup::new();
    let planting = [
        node("", "dir", 0o755, ""),
        node("b", "symlink", 0o777, r#","target":"{outside}""#),
    ]
    .concat();
    let writing = [
        node("", "dir", 0o777, ""),
        node("pwned", "file", 0o644, FILE),
    ]
    .concat();
    // The tree at /a/b/c is nested in /a, whose `b` is a link out of the target.
    setup
        .snapshot(&[("/a", &planting), ("/a/b/c", &writing)], b"payload")
        .await;
    let out = setup.restore(&["latest"]);
    assert_failed(&out, "not replaced by a file");
    setup.assert_outside_untouched();

    // A tree at the very place of the link restores there; the link is left to it.
    let setup = Setup::new();
    setup
        .snapshot(&[("/a", &planting), ("/a/b", &writing)], b"payload")
        .await;
    let out = setup.restore(&["latest"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    setup.assert_outside_untouched();
    let pwned = setup.target().join("a/b/pwned");
    assert_eq!(std::fs::read(pwned).unwrap(), b"payload");
}

#[tokio::test]
async fn a_symlink_in_the_target_is_not_followed_when_its_directory_is_filtered_out() {
    let setup = Setup::new();
    let listing = [
        node("", "dir", 0o755, ""),
        node("docs", "dir", 0o755, ""),
        node("docs/readme.txt", "file", 0o644, FILE),
    ]
    .concat();
    setup.snapshot(&[("/data", &listing)], b"payload").await;
    std::fs::create_dir(setup.target()).unwrap();
    std::os::unix::fs::symlink(setup.outside(), setup.target().join("docs")).unwrap();
    let out = setup.restore(&["latest:/data", "--include", "docs/readme.txt"]);
    assert_failed(&out, "entries exist");
    setup.assert_outside_untouched();

    // Replacing existing entries replaces the link itself, never what it points to.
    let out = setup.restore(&[
        "latest:/data",
        "--include",
        "docs/readme.txt",
        "--overwrite",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    setup.assert_outside_untouched();
    let docs = setup.target().join("docs");
    assert!(std::fs::symlink_metadata(&docs).unwrap().is_dir());
    assert_eq!(std::fs::read(docs.join("readme.txt")).unwrap(), b"payload");
}

#[tokio::test]
async fn an_existing_target_keeps_its_metadata_and_new_files_stay_private_until_stamped() {
    let setup = Setup::new();
    let listing = [
        node("", "dir", 0o777, ""),
        node("secret", "file", 0o600, FILE),
    ]
    .concat();
    setup.snapshot(&[("/data", &listing)], b"payload").await;
    std::fs::create_dir(setup.target()).unwrap();
    std::fs::set_permissions(setup.target(), std::fs::Permissions::from_mode(0o710)).unwrap();
    let out = setup.restore(&["latest:/data"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(
        mode(&setup.target()),
        0o710,
        "the existing target re-stamped"
    );
    assert_eq!(mode(&setup.target().join("secret")), 0o600);
    // A target the restore makes gets the root's metadata.
    let fresh = setup.home.path().join("fresh");
    let out = setup.kbackup(&[
        "restore",
        "path",
        "latest:/data",
        "--target",
        fresh.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&fresh), 0o777);
}

#[tokio::test]
async fn nested_trees_of_one_snapshot_restore() {
    let setup = Setup::new();
    let data = setup.home.path().join("data");
    std::fs::create_dir_all(data.join("sub/deep")).unwrap();
    std::fs::write(data.join("top.txt"), b"top").unwrap();
    std::fs::write(data.join("sub/deep/inner.txt"), b"inner").unwrap();
    let (outer, inner) = (
        data.to_str().unwrap(),
        data.join("sub").display().to_string(),
    );
    let backup = setup.kbackup(&["backup", "path", outer, &inner]);
    assert!(backup.status.success(), "{}", text(&backup.stderr));
    let out = setup.restore(&["latest"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let restored = setup.target().join(outer.trim_start_matches('/'));
    assert_eq!(std::fs::read(restored.join("top.txt")).unwrap(), b"top");
    assert_eq!(
        std::fs::read(restored.join("sub/deep/inner.txt")).unwrap(),
        b"inner"
    );
}

#[tokio::test]
async fn a_failed_overwrite_leaves_existing_files_intact() {
    let setup = Setup::new();
    let data = setup.home.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("big.bin"), backup_testing::noise(3_000_000, 5)).unwrap();
    std::fs::write(data.join("small.txt"), b"small").unwrap();
    let dir = data.to_str().unwrap();
    assert!(setup.kbackup(&["backup", "path", dir]).status.success());
    let one = format!("latest:{dir}");
    assert!(setup.restore(&[&one]).status.success());
    let target = setup.target();
    std::fs::write(target.join("big.bin"), b"local big").unwrap();
    std::fs::write(target.join("small.txt"), b"local small").unwrap();
    for pack in walk(&setup.repo_dir().join("data")) {
        let mut bytes = std::fs::read(&pack).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        std::fs::write(&pack, bytes).unwrap();
    }
    let out = setup.restore(&[&one, "--overwrite"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // Each file is the user's or the snapshot's, whole: never missing, never truncated.
    let big = std::fs::read(target.join("big.bin")).unwrap();
    assert!(
        big == b"local big" || big == backup_testing::noise(3_000_000, 5),
        "big.bin is {} bytes",
        big.len()
    );
    let small = std::fs::read(target.join("small.txt")).unwrap();
    assert!(small == b"local small" || small == b"small", "{small:?}");
    let left: Vec<_> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter().all(|n| !n.starts_with(".kbackup")),
        "temporary files left: {left:?}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
