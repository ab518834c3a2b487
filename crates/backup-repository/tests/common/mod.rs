//! Shared by the repository's integration tests.

use backup_core::ObjectStorage;
use backup_repository::{InitOptions, KdfParams, Repository};
use std::sync::Arc;

/// An empty snapshot taken now (its id is set when written).
pub fn snapshot() -> backup_core::Snapshot {
    backup_core::Snapshot {
        id: backup_core::SnapshotId::parse("00000000").unwrap(),
        time: chrono::Utc::now(),
        source: "test".into(),
        tags: Default::default(),
        labels: Default::default(),
        components: vec![],
        totals: Default::default(),
    }
}

/// A repository with password `pw` and the cheapest key derivation (tests open many).
pub async fn init(storage: Arc<dyn ObjectStorage>) -> Repository {
    let options = InitOptions {
        kdf: KdfParams::CHEAPEST,
        ..InitOptions::default()
    };
    Repository::init(storage, b"pw", options).await.unwrap()
}
