//! An encrypted repository in memory, for the use cases' unit tests.

use backup_core::RepositoryLocation;
use backup_repository::crypto::KdfParams;
use backup_repository::{InitOptions, Repository};

/// A new repository on in-memory storage, with cheap key derivation (the tests are about
/// the procedures, not the key's cost).
pub(crate) async fn in_memory() -> Repository {
    let location = RepositoryLocation::parse("memory://repo").expect("a memory location");
    let storage = backup_storage::open(&location, &Default::default())
        .await
        .expect("memory storage");
    let options = InitOptions {
        kdf: KdfParams::CHEAPEST,
        ..InitOptions::default()
    };
    Repository::init(storage, b"pw", options)
        .await
        .expect("a new repository")
}
