//! The repository on every backend: memory, a temporary directory, the real MinIO and the real
//! Azurite of the test environment (`cargo xtask env up`).

mod common;

use backup_core::{ObjectStorage, ObjectStorageExt, RepositoryLocation};
use backup_repository::{PruneOptions, Repository, SnapshotFile};
use backup_storage::{Secret, StorageOptions, open};
use std::sync::Arc;

async fn round_trip(storage: Arc<dyn ObjectStorage>) {
    let repository = common::init(storage.clone()).await;
    let data = backup_testing::noise(6_000_000, 0x9E37_79B9_7F4A_7C15);
    let (content, stats) = repository
        .backup_stream("dump", data.as_slice())
        .await
        .unwrap();
    assert!(stats.chunks >= 2, "{stats:?}");
    repository
        .write_snapshot(SnapshotFile {
            snapshot: common::snapshot(),
            streams: vec![content],
            trees: vec![],
        })
        .await
        .unwrap();

    let reopened = Repository::open(storage, b"pw").await.unwrap();
    let check = reopened.check(100).await.unwrap();
    assert!(check.errors.is_empty(), "{:?}", check.errors);
    assert!(
        first_stream(&reopened).await == data,
        "restored bytes differ"
    );
    prune_frees_what_no_snapshot_uses(&reopened, &data).await;
    prune_repacks_partly_used_packs(&reopened).await;
}

/// Stored bytes of all packs.
async fn stored_bytes(repository: &Repository) -> u64 {
    let packs = repository.storage().list_all("data/").await.unwrap();
    packs.iter().map(|p| p.size).sum()
}

/// Snapshot `a + b`, then snapshot `a`, then the first deleted: the pack holding both is half
/// used. A prune copies the used half into a new pack and marks the old one; the prune after
/// the grace period deletes it. What is kept still restores and checks clean.
async fn prune_repacks_partly_used_packs(repository: &Repository) {
    let (a, b) = (
        backup_testing::noise(2_000_000, 71),
        backup_testing::noise(2_000_000, 72),
    );
    let both = [a.as_slice(), b.as_slice()].concat();
    let write = |content| {
        let mut snapshot = common::snapshot();
        snapshot.time = chrono::Utc::now();
        repository.write_snapshot(SnapshotFile {
            snapshot,
            streams: vec![content],
            trees: vec![],
        })
    };
    let (whole, _) = repository
        .backup_stream("both", both.as_slice())
        .await
        .unwrap();
    let first = write(whole).await.unwrap();
    let (half, stats) = repository.backup_stream("a", a.as_slice()).await.unwrap();
    assert!(stats.deduplicated + 1 >= stats.chunks, "{stats:?}");
    write(half.clone()).await.unwrap();
    repository.delete_snapshot(&first).await.unwrap();
    let before = stored_bytes(repository).await;

    let zero = std::time::Duration::ZERO;
    let now = chrono::Utc::now() + chrono::Duration::hours(1);
    let repacked = repository
        .prune(&PruneOptions::new(zero, now))
        .await
        .unwrap();
    assert_eq!(
        (
            repacked.packs_repacked,
            repacked.packs_marked,
            repacked.packs_deleted
        ),
        (1, 1, 0),
        "{repacked:?}"
    );
    assert!(
        (1_500_000..2_100_000).contains(&repacked.bytes_repacked),
        "about the 2 MB of `a` copied: {repacked:?}"
    );
    let later = now + chrono::Duration::hours(1);
    let deleted = repository
        .prune(&PruneOptions::new(zero, later))
        .await
        .unwrap();
    assert_eq!(deleted.packs_deleted, 1, "{deleted:?}");
    assert!(
        stored_bytes(repository).await + 1_500_000 < before,
        "the unused half is gone"
    );
    let check = repository.check(100).await.unwrap();
    assert!(check.errors.is_empty(), "{:?}", check.errors);
    let mut out = Vec::new();
    repository
        .restore_stream(&repository.load_index().await.unwrap(), &half, &mut out)
        .await
        .unwrap();
    assert!(out == a, "the kept snapshot restores after the repack");
}

/// The bytes of the oldest snapshot's first stream.
async fn first_stream(repository: &Repository) -> Vec<u8> {
    let snapshots = repository.snapshots().await.unwrap();
    let mut out = Vec::new();
    repository
        .restore_stream(
            &repository.load_index().await.unwrap(),
            &snapshots[0].streams[0],
            &mut out,
        )
        .await
        .unwrap();
    out
}

/// A second snapshot of other data, deleted, then pruned: its packs go once they are older
/// than the grace period, and the first snapshot still restores and checks clean.
async fn prune_frees_what_no_snapshot_uses(repository: &Repository, kept: &[u8]) {
    let other = backup_testing::noise(3_000_000, 42);
    let (content, _) = repository
        .backup_stream("other", other.as_slice())
        .await
        .unwrap();
    let mut snapshot = repository.snapshots().await.unwrap()[0].snapshot.clone();
    snapshot.time = chrono::Utc::now();
    let id = repository
        .write_snapshot(SnapshotFile {
            snapshot,
            streams: vec![content],
            trees: vec![],
        })
        .await
        .unwrap();
    repository.delete_snapshot(&id).await.unwrap();
    let now = chrono::Utc::now();
    let hour = std::time::Duration::from_secs(3600);
    let recent = repository
        .prune(&PruneOptions::new(hour, now))
        .await
        .unwrap();
    assert_eq!(
        recent.packs_deleted, 0,
        "younger than the grace period: {recent:?}"
    );
    assert!(recent.packs_too_recent >= 1, "{recent:?}");
    let later = now + chrono::Duration::minutes(1);
    let zero = std::time::Duration::ZERO;
    let planned = repository
        .plan_prune(&PruneOptions::new(zero, later))
        .await
        .unwrap()
        .report;
    assert!(
        planned.packs_marked >= 1 && planned.packs_deleted == 0,
        "{planned:?}"
    );
    let marked = repository
        .prune(&PruneOptions::new(zero, later))
        .await
        .unwrap();
    assert_eq!(marked.packs_marked, planned.packs_marked);
    assert!(
        repository
            .prune(&PruneOptions::new(hour, later))
            .await
            .unwrap()
            .packs_deleted
            == 0,
        "not deleted before the grace period has passed since the mark"
    );
    let done = repository
        .prune(&PruneOptions::new(zero, later))
        .await
        .unwrap();
    assert_eq!(done.packs_deleted, planned.packs_marked);
    assert!(done.bytes_freed > 0, "{done:?}");
    assert!(
        repository
            .plan_prune(&PruneOptions::new(zero, later))
            .await
            .unwrap()
            .report
            .packs_deleted
            == 0
    );
    let check = repository.check(100).await.unwrap();
    assert!(check.errors.is_empty(), "{:?}", check.errors);
    assert_eq!(repository.snapshots().await.unwrap().len(), 1);
    assert!(
        first_stream(repository).await == kept,
        "the kept snapshot still restores after the prune"
    );
}

#[tokio::test]
async fn on_memory() {
    round_trip(
        open(
            &RepositoryLocation::parse("memory://repo").unwrap(),
            &StorageOptions::default(),
        )
        .await
        .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions {
        create_missing_dir: true,
        ..StorageOptions::default()
    };
    let url = format!("file://{}/repo", dir.path().display());
    round_trip(
        open(&RepositoryLocation::parse(&url).unwrap(), &options)
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn on_minio() {
    let server = backup_testing::s3();
    let options = StorageOptions {
        endpoint: Some(server.endpoint),
        access_key_id: Some(server.access_key_id),
        secret_access_key: Some(Secret::new(server.secret_access_key)),
        ..StorageOptions::default()
    };
    let url = format!(
        "s3://{}/{}",
        server.bucket,
        backup_testing::unique_name("repo")
    );
    round_trip(
        open(&RepositoryLocation::parse(&url).unwrap(), &options)
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn on_azurite() {
    let server = backup_testing::azure();
    let options = StorageOptions {
        azure_account: Some(server.account),
        azure_key: Some(Secret::new(server.key)),
        azure_endpoint: Some(server.endpoint),
        ..StorageOptions::default()
    };
    let url = format!(
        "az://{}/{}",
        server.container,
        backup_testing::unique_name("repo")
    );
    round_trip(
        open(&RepositoryLocation::parse(&url).unwrap(), &options)
            .await
            .unwrap(),
    )
    .await;
}
