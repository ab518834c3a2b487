//! kbackup's repository format: deduplicated, compressed, encrypted, verifiable storage of
//! snapshots on any [`backup_core::ObjectStorage`]-like store.
//!
//! This crate is being built bottom-up. Present: the cryptographic core ([`crypto`]: a random
//! master key, wrapped in password key slots with Argon2id, sealing every object with
//! XChaCha20-Poly1305), content-defined chunking ([`chunking`], FastCDC) with keyed BLAKE3
//! chunk ids, and the blob encoding ([`blob`]: optional zstd, then sealing, verified against
//! its id on read). Packs, index, snapshots, `check` and `prune` build on these.

pub mod blob;
pub mod check;
pub mod chunking;
pub mod crypto;
#[cfg(test)]
mod failing;
pub mod forget;
pub mod index;
pub mod pack;
pub mod prune;
mod recover;
pub mod repository;
mod sealed;
pub mod session;
pub mod snapshot_file;
pub mod stream;
pub mod tree;

pub use blob::{BlobError, decode_blob, encode_blob};
pub use check::CheckReport;
pub use chunking::{ChunkerParams, chunk_boundaries};
pub use crypto::{ChunkId, CryptoError, KdfParams, KeySlot, MasterKey};
pub use forget::ForgetPlan;
pub use index::Index;
pub use pack::{BlobLocation, PackBuilder, PackError};
pub use prune::{PruneOptions, PrunePlan, PruneReport};
pub use repository::{InitOptions, KeyInfo, Repository, RepositoryConfig, RepositoryError};
pub use session::{BackupSession, StoredStream};
pub use snapshot_file::SnapshotFile;
pub use stream::{BackupStats, StreamContent, default_workers};
