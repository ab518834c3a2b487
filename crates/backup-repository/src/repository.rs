//! A repository on object storage: `config` (sealed), `keys/` (password slots). `init`
//! writes the key slot first and the config last, so a half-initialized location is never
//! mistaken for a repository.

use crate::chunking::ChunkerParams;
use crate::crypto::{CryptoError, KdfParams, KeySlot, MasterKey};
use backup_core::{ObjectStorage, ObjectStorageExt, StorageError};
use bytes::Bytes;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The format version this code writes (it reads this one and every earlier one). Version 2
/// stores pack headers and index objects compressed (see [`crate::sealed::metadata_json`]).
pub const FORMAT_VERSION: u32 = 2;
const CONFIG: &str = "config";
const KEYS: &str = "keys/";
/// The largest key slot or configuration read (each is a few hundred bytes).
const MAX_KEY_SLOT: u64 = 64 * 1024;

/// Settings fixed when the repository is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryConfig {
    /// Format version.
    pub version: u32,
    /// Random id (hex), names the repository in messages and locks.
    pub id: String,
    /// Chunk size bounds (fixed: changing them would break deduplication).
    pub chunker: ChunkerParams,
    /// zstd level for blobs.
    pub compression_level: i32,
}

impl RepositoryConfig {
    /// Whether pack headers and index objects are written compressed (format 2 on).
    pub fn compressed_metadata(&self) -> bool {
        self.version >= 2
    }
}

/// How to create a repository.
#[derive(Debug, Clone, Copy)]
pub struct InitOptions {
    /// Chunk size bounds.
    pub chunker: ChunkerParams,
    /// zstd level.
    pub compression_level: i32,
    /// Cost of the password key slot.
    pub kdf: KdfParams,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            chunker: ChunkerParams::default(),
            compression_level: 3,
            kdf: KdfParams::default(),
        }
    }
}

/// Why a repository cannot be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A key or object failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// `init` on a location that already holds a repository.
    #[error("{0} already holds a kbackup repository")]
    AlreadyInitialized(String),
    /// `open` on a location without one (initializing one there is the next step).
    #[error("{0} holds no kbackup repository")]
    NotARepository(String),
    /// A stored object is not what this version understands.
    #[error("{0}")]
    Corrupt(String),
    /// A local file or directory could not be read or written (the message names it).
    #[error("{0}")]
    Local(String),
    /// A restore's target holds entries the restore would write, and overwriting was not
    /// asked for: nothing was written.
    #[error("{count} entries exist in the target (first: {first}): nothing written")]
    TargetNotEmpty {
        /// How many.
        count: usize,
        /// The first, as the target names it.
        first: String,
    },
    /// A retention policy without a rule, which would forget every snapshot but the newest.
    #[error("refusing an empty retention policy: it would forget every snapshot but the newest")]
    EmptyRetentionPolicy,
    /// A backup session failed to store what it read; nothing it added may be referenced.
    #[error("the backup cannot complete, nothing was committed: {0}")]
    SessionFailed(String),
}

impl From<tokio::task::JoinError> for RepositoryError {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::Local(format!("a worker task failed: {error}"))
    }
}

/// An open repository: its storage, key and configuration.
#[derive(Clone)]
pub struct Repository {
    storage: Arc<dyn ObjectStorage>,
    key: MasterKey,
    pub(crate) config: RepositoryConfig,
    /// The key slot the password opened (`keys/ab12...`).
    opened_with: String,
}

/// One key slot, as `repo key list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// Its id (the object name without `keys/`).
    pub id: String,
    /// Whether the current password opens it.
    pub current: bool,
    /// Argon2id memory in KiB.
    pub memory_kib: u32,
    /// Argon2id passes.
    pub iterations: u32,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Repository({} at {})",
            self.config.id,
            self.storage.location()
        )
    }
}

pub(crate) fn random_hex(bytes: usize) -> Result<String, CryptoError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|e| CryptoError::Random(e.to_string()))?;
    Ok(hex::encode(buffer))
}

impl Repository {
    /// Creates a repository protected by `password`.
    pub async fn init(
        storage: Arc<dyn ObjectStorage>,
        password: &[u8],
        options: InitOptions,
    ) -> Result<Self, RepositoryError> {
        if storage.exists(CONFIG).await? {
            return Err(RepositoryError::AlreadyInitialized(storage.location()));
        }
        let key = MasterKey::generate()?;
        let config = RepositoryConfig {
            version: FORMAT_VERSION,
            id: random_hex(16)?,
            chunker: options.chunker,
            compression_level: options.compression_level,
        };
        let mut repository = Self {
            storage,
            key,
            config,
            opened_with: String::new(),
        };
        repository.opened_with = repository.add_password(password, options.kdf).await?;
        let sealed = repository.key.seal(
            &serde_json::to_vec(&repository.config).expect("config serializes"),
            CONFIG.as_bytes(),
        )?;
        match repository
            .storage
            .put_if_absent(CONFIG, Bytes::from(sealed))
            .await
        {
            Err(StorageError::AlreadyExists { .. }) => Err(RepositoryError::AlreadyInitialized(
                repository.storage.location(),
            )),
            other => other.map(|_| repository).map_err(Into::into),
        }
    }

    /// Opens a repository with any of its passwords.
    pub async fn open(
        storage: Arc<dyn ObjectStorage>,
        password: &[u8],
    ) -> Result<Self, RepositoryError> {
        let config_size = match storage.head(CONFIG).await {
            Ok(meta) => meta.size,
            Err(e) if e.is_not_found() => {
                return Err(RepositoryError::NotARepository(storage.location()));
            }
            Err(e) => return Err(e.into()),
        };
        if config_size > MAX_KEY_SLOT {
            return Err(RepositoryError::Corrupt(format!(
                "config: {config_size} bytes, not a repository configuration"
            )));
        }
        let sealed_config = match storage.get_bytes(CONFIG).await {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => {
                return Err(RepositoryError::NotARepository(storage.location()));
            }
            Err(e) => return Err(e.into()),
        };
        let slots: Vec<_> = storage.list(KEYS).try_collect().await?;
        let mut key = None;
        let mut opened_with = String::new();
        for object in &slots {
            // An unreadable slot (damaged, forged, of costs out of bounds) opens nothing;
            // the others still may.
            let skipped = |why: String| tracing::warn!("skipped key slot {}: {why}", object.key);
            if object.size > MAX_KEY_SLOT {
                skipped(format!("{} bytes", object.size));
                continue;
            }
            let text = storage.get_bytes(&object.key).await?;
            let slot: KeySlot = match serde_json::from_slice(&text) {
                Ok(slot) => slot,
                Err(e) => {
                    skipped(format!("unreadable ({e})"));
                    continue;
                }
            };
            match slot.unlock(password) {
                Ok(found) => {
                    key = Some(found);
                    opened_with = object.key.clone();
                    break;
                }
                Err(CryptoError::WrongPassword) => continue,
                Err(other) => skipped(other.to_string()),
            }
        }
        let key = key.ok_or(CryptoError::WrongPassword)?;
        let plain = key.open(&sealed_config, CONFIG.as_bytes(), "config")?;
        let config: RepositoryConfig = serde_json::from_slice(&plain)
            .map_err(|e| RepositoryError::Corrupt(format!("config: {e}")))?;
        config
            .chunker
            .check()
            .map_err(|why| RepositoryError::Corrupt(format!("config: {why}")))?;
        if !(1..=FORMAT_VERSION).contains(&config.version) {
            return Err(RepositoryError::Corrupt(format!(
                "repository format version {} (this kbackup reads {FORMAT_VERSION})",
                config.version
            )));
        }
        Ok(Self {
            storage,
            key,
            config,
            opened_with,
        })
    }

    /// Every key slot; `current` marks the one this password opened.
    pub async fn keys(&self) -> Result<Vec<KeyInfo>, RepositoryError> {
        let mut keys = Vec::new();
        for object in self.storage.list_all(KEYS).await? {
            let text = self.storage.get_bytes(&object.key).await?;
            let slot: KeySlot = serde_json::from_slice(&text).map_err(|e| {
                RepositoryError::Corrupt(format!("key slot {} is unreadable: {e}", object.key))
            })?;
            keys.push(KeyInfo {
                id: object.key.trim_start_matches(KEYS).to_owned(),
                current: object.key == self.opened_with,
                memory_kib: slot.params.memory_kib,
                iterations: slot.params.iterations,
            });
        }
        Ok(keys)
    }

    /// Removes a key slot. Refuses the slot in use (change it with [`Self::change_password`])
    /// and the last one (the repository would be lost).
    pub async fn remove_key(&self, id: &str) -> Result<(), RepositoryError> {
        let keys = self.keys().await?;
        let key = keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| RepositoryError::Corrupt(format!("no key {id} in this repository")))?;
        if key.current {
            return Err(RepositoryError::Corrupt(format!(
                "key {id} is the one in use: open the repository with another password to remove it, or change it with `repo key passwd`"
            )));
        }
        if keys.len() < 2 {
            return Err(RepositoryError::Corrupt(
                "refusing to remove the last key: the repository could never be opened again"
                    .into(),
            ));
        }
        self.storage.delete(&format!("{KEYS}{id}")).await?;
        Ok(())
    }

    /// Replaces the password in use: the new slot is written first, then the old one
    /// removed, so an interruption leaves both passwords working, never none.
    pub async fn change_password(
        &mut self,
        new_password: &[u8],
        kdf: KdfParams,
    ) -> Result<String, RepositoryError> {
        let new = self.add_password(new_password, kdf).await?;
        let old = std::mem::replace(&mut self.opened_with, new.clone());
        if !old.is_empty() {
            self.storage.delete(&old).await?;
        }
        Ok(new.trim_start_matches(KEYS).to_owned())
    }

    /// Adds a password (a new key slot); returns the slot's name.
    pub async fn add_password(
        &self,
        password: &[u8],
        kdf: KdfParams,
    ) -> Result<String, RepositoryError> {
        let slot = KeySlot::create(&self.key, password, kdf)?;
        let name = format!("{KEYS}{}", random_hex(8)?);
        self.storage
            .put_if_absent(
                &name,
                Bytes::from(serde_json::to_vec_pretty(&slot).expect("slot serializes")),
            )
            .await?;
        Ok(name)
    }

    /// The configuration.
    pub fn config(&self) -> &RepositoryConfig {
        &self.config
    }

    /// The master key (for the layers that seal objects).
    pub fn key(&self) -> &MasterKey {
        &self.key
    }

    /// The storage it lives on.
    pub fn storage(&self) -> &Arc<dyn ObjectStorage> {
        &self.storage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::RepositoryLocation;

    fn options() -> InitOptions {
        InitOptions {
            kdf: KdfParams::CHEAPEST,
            ..InitOptions::default()
        }
    }

    async fn memory() -> Arc<dyn ObjectStorage> {
        backup_storage::open(
            &RepositoryLocation::parse("memory://repo").unwrap(),
            &backup_storage::StorageOptions::default(),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn init_then_open_with_the_password() {
        let storage = memory().await;
        let created = Repository::init(storage.clone(), b"s3cret", options())
            .await
            .unwrap();
        let opened = Repository::open(storage.clone(), b"s3cret").await.unwrap();
        assert_eq!(opened.config(), created.config());
        assert_eq!(opened.config().chunker, ChunkerParams::default());
        let wrong = Repository::open(storage.clone(), b"nope")
            .await
            .unwrap_err();
        assert!(
            matches!(wrong, RepositoryError::Crypto(CryptoError::WrongPassword)),
            "{wrong}"
        );
        assert!(matches!(
            Repository::init(storage, b"x", options()).await,
            Err(RepositoryError::AlreadyInitialized(_))
        ));
    }

    #[tokio::test]
    async fn a_second_password_opens_it_too() {
        let storage = memory().await;
        let repository = Repository::init(storage.clone(), b"first", options())
            .await
            .unwrap();
        repository
            .add_password(b"second", KdfParams::CHEAPEST)
            .await
            .unwrap();
        assert_eq!(
            Repository::open(storage.clone(), b"second")
                .await
                .unwrap()
                .config()
                .id,
            repository.config().id
        );
        assert_eq!(storage.list_all("keys").await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn keys_are_listed_changed_and_never_all_removed() {
        let storage = memory().await;
        let mut repository = Repository::init(storage.clone(), b"first", options())
            .await
            .unwrap();
        let second = repository
            .add_password(b"second", KdfParams::CHEAPEST)
            .await
            .unwrap();
        let second = second.trim_start_matches("keys/").to_owned();
        let keys = repository.keys().await.unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.iter().filter(|k| k.current).count(), 1);
        let current = keys.iter().find(|k| k.current).unwrap().id.clone();
        assert!(
            repository.remove_key(&current).await.is_err(),
            "not the key in use"
        );
        repository.remove_key(&second).await.unwrap();
        assert!(Repository::open(storage.clone(), b"second").await.is_err());
        assert!(
            repository.remove_key(&current).await.is_err(),
            "never the last key"
        );
        repository
            .change_password(b"third", KdfParams::CHEAPEST)
            .await
            .unwrap();
        assert!(Repository::open(storage.clone(), b"first").await.is_err());
        let reopened = Repository::open(storage, b"third").await.unwrap();
        assert_eq!(reopened.keys().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_empty_location_is_not_a_repository_and_a_damaged_config_is_refused() {
        let storage = memory().await;
        let error = Repository::open(storage.clone(), b"x").await.unwrap_err();
        assert!(
            error.to_string().contains("holds no kbackup repository"),
            "{error}"
        );
        Repository::init(storage.clone(), b"pw", options())
            .await
            .unwrap();
        let mut config = storage.get_bytes("config").await.unwrap().to_vec();
        config[30] ^= 1;
        storage
            .put_bytes("config", Bytes::from(config))
            .await
            .unwrap();
        let error = Repository::open(storage, b"pw").await.unwrap_err();
        assert!(
            matches!(error, RepositoryError::Crypto(CryptoError::Tampered(_))),
            "{error}"
        );
    }

    #[tokio::test]
    async fn nothing_secret_is_stored_in_the_clear() {
        let storage = memory().await;
        Repository::init(storage.clone(), b"visible-password", options())
            .await
            .unwrap();
        for object in storage.list_all("").await.unwrap() {
            let bytes = storage.get_bytes(&object.key).await.unwrap();
            assert!(
                !bytes.windows(16).any(|w| w == b"visible-password"),
                "{} holds the password",
                object.key
            );
        }
        let config = storage.get_bytes("config").await.unwrap();
        assert!(
            !config.windows(7).any(|w| w == b"chunker"),
            "the config is sealed"
        );
    }
}
