//! File trees: backed up and restored identical (content, modes, times, symlinks, hard links,
//! empty and sparse files), unchanged files not read again, filters, refusals, and prune
//! keeping the files' data.

mod common;

use backup_core::progress::NoProgress;
use backup_core::{ObjectStorageExt, RepositoryLocation};
use backup_repository::tree::{
    PathPatterns, RestoreTarget, TreeBackupOptions, TreeBackupReport, TreeContent,
    TreeRestoreOptions,
};
use backup_repository::{BackupSession, Repository, RepositoryError, SnapshotFile};
use backup_storage::StorageOptions;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

async fn repository() -> Repository {
    let storage = backup_storage::open(
        &RepositoryLocation::parse("memory://trees").unwrap(),
        &StorageOptions::default(),
    )
    .await
    .unwrap();
    common::init(storage).await
}

/// A temporary directory holding the seeded tree at `source`, and an empty repository.
async fn seeded() -> (tempfile::TempDir, PathBuf, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    seed(&source);
    (dir, source, repository().await)
}

fn no_patterns() -> PathPatterns {
    PathPatterns::new(&[]).unwrap()
}

fn set_mtime(path: &Path, seconds: i64, nanos: u32) {
    let time = filetime::FileTime::from_unix_time(seconds, nanos);
    filetime::set_symlink_file_times(path, time, time).unwrap();
}

/// A tree with every kind of entry.
fn seed(root: &Path) {
    fs::create_dir_all(root.join("docs/deep/er")).unwrap();
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    fs::write(root.join("docs/readme.txt"), b"hello tree\n").unwrap();
    fs::write(
        root.join("docs/deep/er/big.bin"),
        backup_testing::noise(3_000_000, 7),
    )
    .unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("app.log"), b"log line\n").unwrap();
    // Sparse: 8 MiB with 4 KiB of data in the middle.
    let sparse = fs::File::create(root.join("sparse.img")).unwrap();
    sparse.set_len(8 << 20).unwrap();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut sparse = sparse;
        sparse.seek(SeekFrom::Start(4 << 20)).unwrap();
        sparse.write_all(&[0xab; 4096]).unwrap();
    }
    fs::hard_link(root.join("docs/readme.txt"), root.join("readme-link.txt")).unwrap();
    symlink("docs/readme.txt", root.join("to-readme")).unwrap();
    symlink("/nowhere/at/all", root.join("dangling")).unwrap();
    fs::set_permissions(
        root.join("docs/readme.txt"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    fs::set_permissions(root.join("app.log"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(root.join("empty-dir"), fs::Permissions::from_mode(0o700)).unwrap();
    for (n, path) in [
        "docs/readme.txt",
        "empty",
        "sparse.img",
        "to-readme",
        "docs/deep",
        "docs",
        ".",
    ]
    .iter()
    .enumerate()
    {
        set_mtime(
            &root.join(path),
            1_600_000_000 + n as i64 * 1000,
            123_456_789,
        );
    }
}

/// Every entry under `root`: kind, mode, mtime, size, content hash or link target.
fn describe(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        let relative = path.strip_prefix(root).unwrap().display().to_string();
        let what = if meta.is_dir() {
            stack.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            "dir".to_owned()
        } else if meta.file_type().is_symlink() {
            format!("link->{}", fs::read_link(&path).unwrap().display())
        } else {
            format!("file:{}", blake3::hash(&fs::read(&path).unwrap()).to_hex())
        };
        let mtime = if meta.is_dir() && relative.is_empty() {
            // The root's time changes when a target directory is created in it.
            String::new()
        } else {
            format!("{}.{}", meta.mtime(), meta.mtime_nsec())
        };
        out.insert(
            relative,
            format!(
                "{what} mode={:o} mtime={mtime} size={}",
                meta.mode() & 0o7777,
                meta.len()
            ),
        );
    }
    out
}

async fn back_up(
    repo: &Repository,
    root: &Path,
    options: TreeBackupOptions,
) -> (TreeBackupReport, SnapshotFile) {
    let mut session = BackupSession::start(repo, 2).await.unwrap();
    let report = session.add_tree(root, options, &NoProgress).await.unwrap();
    session.finish().await.unwrap();
    let file = SnapshotFile {
        snapshot: common::snapshot(),
        streams: vec![],
        trees: vec![report.content.clone()],
    };
    repo.write_snapshot(file.clone()).await.unwrap();
    (report, file)
}

async fn restore(
    repo: &Repository,
    tree: &TreeContent,
    target: &Path,
    options: &TreeRestoreOptions,
) -> Result<backup_repository::tree::TreeRestoreReport, backup_repository::RepositoryError> {
    let index = repo.load_index().await.unwrap();
    let target = RestoreTarget::open(target).unwrap();
    repo.restore_tree(&index, tree, &target, options, &NoProgress)
        .await
}

fn restore_options() -> TreeRestoreOptions {
    TreeRestoreOptions {
        include: no_patterns(),
        skip: vec![],
        overwrite: false,
        workers: 4,
    }
}

fn backup_options() -> TreeBackupOptions {
    TreeBackupOptions {
        exclude: no_patterns(),
        parent: Default::default(),
    }
}

#[tokio::test]
async fn a_restored_tree_is_identical() {
    let (dir, source, repo) = seeded().await;
    let (report, _) = back_up(&repo, &source, backup_options()).await;
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!((report.content.files, report.content.dirs), (6, 5));

    let target = dir.path().join("restored");
    let restored = restore(&repo, &report.content, &target, &restore_options())
        .await
        .unwrap();
    assert_eq!(
        (
            restored.files,
            restored.hardlinks,
            restored.symlinks,
            restored.dirs
        ),
        (5, 1, 2, 5)
    );
    assert_eq!(describe(&source), describe(&target));
    let inode = |p: &str| fs::metadata(target.join(p)).unwrap().ino();
    assert_eq!(
        inode("docs/readme.txt"),
        inode("readme-link.txt"),
        "hard link kept"
    );
    let sparse = fs::metadata(target.join("sparse.img")).unwrap();
    assert_eq!(sparse.len(), 8 << 20);
    assert!(
        sparse.blocks() * 512 < 2 << 20,
        "sparse file not sparse: {} blocks",
        sparse.blocks()
    );
    let check = repo.check(100).await.unwrap();
    assert!(check.errors.is_empty(), "{:?}", check.errors);
}

#[tokio::test]
async fn unchanged_files_are_not_read_again() {
    let (dir, source, repo) = seeded().await;
    let (first, _) = back_up(&repo, &source, backup_options()).await;
    let index = repo.load_index().await.unwrap();
    let against_first = async || TreeBackupOptions {
        exclude: no_patterns(),
        parent: repo.parent_listing(&index, &first.content).await.unwrap(),
    };
    let (second, _) = back_up(&repo, &source, against_first().await).await;
    assert_eq!((second.files_read, second.files_unchanged), (0, 6));
    assert_eq!(second.content, first.content, "same tree, same listing");

    fs::write(source.join("app.log"), b"log line\nand another\n").unwrap();
    let (third, _) = back_up(&repo, &source, against_first().await).await;
    assert_eq!((third.files_read, third.files_unchanged), (1, 5));
    let target = dir.path().join("restored");
    restore(&repo, &third.content, &target, &restore_options())
        .await
        .unwrap();
    assert_eq!(
        fs::read(target.join("app.log")).unwrap(),
        b"log line\nand another\n"
    );
}

#[tokio::test]
async fn excludes_includes_and_existing_files() {
    let (dir, source, repo) = seeded().await;
    let options = TreeBackupOptions {
        exclude: PathPatterns::new(&["*.log".into(), "docs/deep".into()]).unwrap(),
        parent: Default::default(),
    };
    let (report, _) = back_up(&repo, &source, options).await;
    let target = dir.path().join("restored");
    restore(&repo, &report.content, &target, &restore_options())
        .await
        .unwrap();
    assert!(!target.join("app.log").exists());
    assert!(!target.join("docs/deep").exists());
    assert!(target.join("docs/readme.txt").exists());

    // Again into the same target: refused before anything is written.
    fs::write(target.join("docs/readme.txt"), b"local edit").unwrap();
    let error = restore(&repo, &report.content, &target, &restore_options())
        .await
        .unwrap_err();
    assert!(
        matches!(error, RepositoryError::TargetNotEmpty { count: 6, .. }),
        "{error}"
    );
    assert_eq!(
        fs::read(target.join("docs/readme.txt")).unwrap(),
        b"local edit"
    );
    let overwrite = TreeRestoreOptions {
        overwrite: true,
        ..restore_options()
    };
    restore(&repo, &report.content, &target, &overwrite)
        .await
        .unwrap();
    assert_eq!(
        fs::read(target.join("docs/readme.txt")).unwrap(),
        b"hello tree\n"
    );

    let only_docs = TreeRestoreOptions {
        include: PathPatterns::new(&["docs".into()]).unwrap(),
        ..restore_options()
    };
    let partial = dir.path().join("partial");
    let done = restore(&repo, &report.content, &partial, &only_docs)
        .await
        .unwrap();
    assert_eq!(done.files, 1);
    assert!(partial.join("docs/readme.txt").exists());
    assert!(!partial.join("empty").exists());
}

#[tokio::test]
async fn prune_keeps_the_files_of_trees() {
    let (dir, source, repo) = seeded().await;
    let (report, _) = back_up(&repo, &source, backup_options()).await;
    let pruned = repo
        .prune(&backup_repository::PruneOptions::new(
            std::time::Duration::ZERO,
            chrono::Utc::now() + chrono::Duration::hours(1),
        ))
        .await
        .unwrap();
    assert_eq!(pruned.packs_deleted, 0, "{pruned:?}");
    let target = dir.path().join("restored");
    restore(&repo, &report.content, &target, &restore_options())
        .await
        .unwrap();
    assert_eq!(describe(&source), describe(&target));
}

#[tokio::test]
async fn a_listing_with_a_path_leaving_the_tree_is_refused() {
    let repo = repository().await;
    let listing = br#"{"path":"","type":"dir","mode":493,"uid":0,"gid":0,"mtime":0,"mtimeNsec":0,"ctime":0,"ctimeNsec":0,"inode":1}
{"path":"../escape","type":"file","mode":420,"uid":0,"gid":0,"mtime":0,"mtimeNsec":0,"ctime":0,"ctimeNsec":0,"inode":2}
"#;
    let (stream, _) = repo
        .backup_stream("listing", listing.as_slice())
        .await
        .unwrap();
    let tree = TreeContent {
        name: "/evil".into(),
        listing: stream,
        files: 1,
        dirs: 1,
        bytes: 0,
    };
    let dir = tempfile::tempdir().unwrap();
    let error = restore(&repo, &tree, &dir.path().join("t"), &restore_options())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("leaves the tree"), "{error}");
    assert!(!dir.path().join("escape").exists());
}

#[tokio::test]
async fn chunks_shared_by_files_or_repeated_in_one_are_written_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    fs::create_dir_all(&source).unwrap();
    let noise = backup_testing::noise(3_000_000, 11);
    let twice = [noise.as_slice(), noise.as_slice()].concat();
    fs::write(source.join("twice.bin"), &twice).unwrap();
    fs::write(source.join("twice-copy.bin"), &twice).unwrap();
    fs::write(source.join("once.bin"), &noise).unwrap();
    fs::write(source.join("a.txt"), b"same small content\n").unwrap();
    fs::write(source.join("b.txt"), b"same small content\n").unwrap();
    let repo = repository().await;
    let (report, _) = back_up(&repo, &source, backup_options()).await;
    let index = repo.load_index().await.unwrap();
    assert!(
        (index.len() as u64) < 8,
        "18 MB of files deduplicated to {} chunks",
        index.len()
    );

    let target = dir.path().join("restored");
    let restored = restore(&repo, &report.content, &target, &restore_options())
        .await
        .unwrap();
    assert_eq!(restored.files, 5);
    assert_eq!(restored.bytes, 15_000_000 + 2 * 19);
    assert_eq!(describe(&source), describe(&target));
}

#[tokio::test]
async fn a_damaged_pack_fails_the_restore_naming_it() {
    let (dir, source, repo) = seeded().await;
    let (report, _) = back_up(&repo, &source, backup_options()).await;
    let packs = repo.storage().list_all("data/").await.unwrap();
    let largest = packs.iter().max_by_key(|p| p.size).unwrap();
    let mut bytes = repo
        .storage()
        .get_bytes(&largest.key)
        .await
        .unwrap()
        .to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    repo.storage()
        .put_bytes(&largest.key, bytes.into())
        .await
        .unwrap();

    let error = restore(
        &repo,
        &report.content,
        &dir.path().join("restored"),
        &restore_options(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, backup_repository::RepositoryError::Corrupt(_)),
        "{error:?}"
    );
    assert!(error.to_string().contains(&largest.key), "{error}");
}

#[tokio::test]
async fn a_restored_tree_reads_back_identical_and_every_change_to_it_is_found() {
    let (dir, source, repo) = seeded().await;
    let (report, _) = back_up(&repo, &source, backup_options()).await;
    let target = dir.path().join("restored");
    restore(&repo, &report.content, &target, &restore_options())
        .await
        .unwrap();
    let index = repo.load_index().await.unwrap();
    let verify = |repo: &Repository| {
        let index = index.clone();
        let tree = report.content.clone();
        let target = RestoreTarget::open(&target).unwrap();
        let repo = repo.clone();
        async move { repo.verify_tree(&index, &tree, &target).await.unwrap() }
    };
    let clean = verify(&repo).await;
    assert_eq!(clean.difference_count, 0, "{:?}", clean.differences);
    assert_eq!(clean.files, 6, "every file and hard link read back");
    assert!(clean.bytes >= 3_000_000 + (8 << 20), "{}", clean.bytes);

    // One byte of the big file flipped, a file cut, one removed, a link redirected, a file
    // replaced by a link to it.
    let big = target.join("docs/deep/er/big.bin");
    let mut bytes = fs::read(&big).unwrap();
    bytes[2_000_000] ^= 1;
    fs::write(&big, &bytes).unwrap();
    fs::write(target.join("app.log"), b"log").unwrap();
    fs::remove_dir(target.join("empty-dir")).unwrap();
    fs::remove_file(target.join("to-readme")).unwrap();
    symlink("elsewhere", target.join("to-readme")).unwrap();
    fs::remove_file(target.join("empty")).unwrap();
    symlink("/etc/hostname", target.join("empty")).unwrap();
    let found = verify(&repo).await;
    let text = found.differences.join("\n");
    assert_eq!(found.difference_count, 5, "{text}");
    for expected in [
        "docs/deep/er/big.bin: content differs from the snapshot at bytes",
        "app.log: 3 bytes, the snapshot has 9",
        "empty-dir: directory not there",
        "to-readme: symbolic link points elsewhere",
        "empty: file not there",
    ] {
        assert!(text.contains(expected), "{expected} in:\n{text}");
    }
}
