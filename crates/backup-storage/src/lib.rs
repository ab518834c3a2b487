//! kbackup's object storage adapter: [`backup_core::ObjectStorage`] on `object_store`, for
//! `file://`, `s3://` (AWS, MinIO and any S3-compatible server), `az://` (Azure Blob,
//! Azurite), `gs://` and `memory://` locations.
//!
//! ```no_run
//! # async fn demo() -> Result<(), backup_core::StorageError> {
//! use backup_core::{ObjectStorageExt, RepositoryLocation};
//! let location = RepositoryLocation::parse("s3://sts-stackgraph-backup").unwrap();
//! let storage = backup_storage::open(&location, &backup_storage::StorageOptions::from_env()).await?;
//! for object in storage.list_all("").await? {
//!     println!("{} {}", object.key, object.size);
//! }
//! # Ok(()) }
//! ```

mod error;
mod open;
mod options;
mod store;

pub use open::open;
pub use options::{Secret, StorageOptions};
