//! Shared by the repository's integration tests.

use backup_core::ObjectStorage;
use backup_repository::{InitOptions, KdfParams, Repository};
use std::sync::Arc;

/// A repository with password `pw` and the cheapest key derivation (tests open many).
pub async fn init(storage: Arc<dyn ObjectStorage>) -> Repository {
    let options = InitOptions {
        kdf: KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        ..InitOptions::default()
    };
    Repository::init(storage, b"pw", options).await.unwrap()
}
