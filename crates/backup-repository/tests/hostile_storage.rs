//! Objects read from storage are hostile: truncated packs, stray names, forged or damaged
//! key slots, costs no machine can pay, configurations FastCDC refuses. Each is an error
//! naming the object (or a skipped object), never a panic or an unbounded allocation.

mod common;

use backup_core::{ObjectStorage, ObjectStorageExt, RepositoryLocation};
use backup_repository::{KdfParams, KeySlot, MasterKey, Repository, RepositoryError};
use backup_storage::StorageOptions;
use bytes::Bytes;
use std::sync::Arc;

async fn storage(name: &str) -> Arc<dyn ObjectStorage> {
    let location = RepositoryLocation::parse(&format!("memory://{name}")).unwrap();
    backup_storage::open(&location, &StorageOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_truncated_pack_is_damage_named_not_a_panic() {
    let repo = common::init(storage("truncated").await).await;
    let data = backup_testing::noise(3_000_000, 3);
    let (content, _) = repo.backup_stream("dump", data.as_slice()).await.unwrap();
    let pack = repo.storage().list_all("data/").await.unwrap().remove(0);
    let bytes = repo.storage().get_bytes(&pack.key).await.unwrap();
    let half = bytes.slice(..bytes.len() / 2);
    repo.storage().put_bytes(&pack.key, half).await.unwrap();
    let index = repo.load_index().await.unwrap();
    let mut out = Vec::new();
    let error = repo
        .restore_stream(&index, &content, &mut out)
        .await
        .unwrap_err();
    assert!(error.to_string().contains(&pack.key), "{error}");
    let check = repo.check(100).await.unwrap();
    assert!(
        check.errors.iter().any(|e| e.contains(&pack.key)),
        "{check:?}"
    );
}

#[tokio::test]
async fn stray_objects_are_named_and_block_nothing() {
    let repo = common::init(storage("strays").await).await;
    let (content, _) = repo.backup_stream("dump", &b"data"[..]).await.unwrap();
    let mut file = backup_repository::SnapshotFile {
        snapshot: common::snapshot(),
        streams: vec![content],
        trees: vec![],
    };
    file.snapshot.source = "real".into();
    repo.write_snapshot(file).await.unwrap();
    for key in [
        "data/x",
        "data/ab",
        "data/zz/zz",
        "index/x",
        "snapshots/deadbeef",
        "pending/x",
        "sessions/y",
    ] {
        repo.storage()
            .put_bytes(key, Bytes::from_static(b"junk"))
            .await
            .unwrap();
    }
    // Listings, backups and prune planning still work; prune refuses to delete.
    assert_eq!(repo.snapshots().await.unwrap().len(), 1);
    let (again, stats) = repo.backup_stream("dump", &b"more data"[..]).await.unwrap();
    assert_eq!(stats.adopted_packs, 0);
    assert_eq!(again.size, 9);
    let check = repo.check(100).await.unwrap();
    let named = [check.errors.clone(), check.warnings.clone()].concat();
    for key in [
        "data/x",
        "data/ab",
        "data/zz/zz",
        "index/x",
        "snapshots/deadbeef",
    ] {
        assert!(named.iter().any(|n| n.starts_with(key)), "{key}: {named:?}");
    }
    let options = backup_repository::PruneOptions::new(
        std::time::Duration::ZERO,
        chrono::Utc::now() + chrono::Duration::hours(1),
    );
    let error = repo.prune(&options).await.unwrap_err();
    assert!(error.to_string().contains("nothing is deleted"), "{error}");
}

#[tokio::test]
async fn an_unreadable_key_slot_blocks_no_password_and_costs_are_bounded() {
    let storage = storage("slots").await;
    let repo = common::init(storage.clone()).await;
    let master = MasterKey::generate().unwrap();
    let mut greedy = KeySlot::create(&master, b"pw", KdfParams::CHEAPEST).unwrap();
    greedy.params.memory_kib = u32::MAX;
    let error = greedy.unlock(b"pw").unwrap_err();
    assert!(error.to_string().contains("out of bounds"), "{error}");
    // Slots sort before the real one: a forged one, junk, and the greedy one.
    for (name, body) in [
        ("keys/0000", serde_json::to_vec(&greedy).unwrap()),
        ("keys/0001", b"{not json".to_vec()),
        ("keys/0002", vec![b'x'; 100_000]),
    ] {
        storage.put_bytes(name, Bytes::from(body)).await.unwrap();
    }
    let opened = Repository::open(storage.clone(), b"pw").await.unwrap();
    assert_eq!(opened.config(), repo.config());
    let wrong = Repository::open(storage, b"nope").await.unwrap_err();
    assert!(
        matches!(
            wrong,
            RepositoryError::Crypto(backup_repository::CryptoError::WrongPassword)
        ),
        "{wrong}"
    );
}

#[tokio::test]
async fn a_configuration_fastcdc_refuses_is_refused_on_open() {
    let storage = storage("config").await;
    common::init(storage.clone()).await;
    storage
        .put_bytes("config", Bytes::from(vec![0u8; 1 << 20]))
        .await
        .unwrap();
    let error = Repository::open(storage, b"pw").await.unwrap_err();
    assert!(error.to_string().contains("config"), "{error}");
    let params = backup_repository::ChunkerParams {
        min_size: 0,
        avg_size: 1,
        max_size: u32::MAX,
    };
    assert!(params.check().unwrap_err().contains("out of bounds"));
    assert!(backup_repository::ChunkerParams::default().check().is_ok());
}
