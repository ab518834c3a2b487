//! What the fuzz targets share: an in-memory object store and a repository made once.

use async_trait::async_trait;
use backup_core::storage::{Listing, PutOptions};
use backup_core::{ByteStream, ObjectMeta, ObjectStorage, StorageError};
use backup_repository::{InitOptions, KdfParams, MasterKey, Repository};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

/// The password of the fuzzed repository.
pub const PASSWORD: &[u8] = b"fuzz";

/// Objects in memory (no listing pages, no multipart: the decoders are what is fuzzed).
#[derive(Debug, Default, Clone)]
pub struct Memory {
    objects: Arc<Mutex<BTreeMap<String, Bytes>>>,
}

impl Memory {
    /// A copy whose objects are independent of this one's.
    pub fn fork(&self) -> Self {
        Self {
            objects: Arc::new(Mutex::new(self.lock().clone())),
        }
    }

    /// Puts an object.
    pub fn insert(&self, key: &str, body: Bytes) {
        self.lock().insert(key.to_owned(), body);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Bytes>> {
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn meta(key: &str, size: usize) -> ObjectMeta {
        ObjectMeta {
            key: key.to_owned(),
            size: size as u64,
            last_modified: None,
            etag: None,
        }
    }

    fn missing(key: &str) -> StorageError {
        StorageError::NotFound {
            key: key.to_owned(),
        }
    }
}

#[async_trait]
impl ObjectStorage for Memory {
    fn location(&self) -> String {
        "memory://fuzz".into()
    }

    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        _options: PutOptions,
    ) -> Result<ObjectMeta, StorageError> {
        let parts: Vec<Bytes> = body
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let bytes = Bytes::from(parts.concat());
        let meta = Self::meta(key, bytes.len());
        self.insert(key, bytes);
        Ok(meta)
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<ObjectMeta, StorageError> {
        let mut objects = self.lock();
        if objects.contains_key(key) {
            return Err(StorageError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        let meta = Self::meta(key, body.len());
        objects.insert(key.to_owned(), body);
        Ok(meta)
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream, StorageError> {
        let bytes = self
            .lock()
            .get(key)
            .cloned()
            .ok_or_else(|| Self::missing(key))?;
        let bytes = match range {
            None => bytes,
            Some(range) => {
                let end = (range.end as usize).min(bytes.len());
                bytes.slice((range.start as usize).min(end)..end)
            }
        };
        Ok(futures::stream::once(async move { Ok(bytes) }).boxed())
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let size = self
            .lock()
            .get(key)
            .map(Bytes::len)
            .ok_or_else(|| Self::missing(key))?;
        Ok(Self::meta(key, size))
    }

    fn list(&self, prefix: &str) -> BoxStream<'static, Result<ObjectMeta, StorageError>> {
        let found: Vec<_> = self
            .lock()
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| Ok(Self::meta(k, v.len())))
            .collect();
        futures::stream::iter(found).boxed()
    }

    async fn list_with_delimiter(&self, prefix: &str) -> Result<Listing, StorageError> {
        let objects = self
            .lock()
            .iter()
            .filter(|(k, _)| k.starts_with(prefix) && !k[prefix.len()..].contains('/'))
            .map(|(k, v)| Self::meta(k, v.len()))
            .collect();
        Ok(Listing {
            objects,
            prefixes: Vec::new(),
        })
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.lock().remove(key);
        Ok(())
    }
}

/// A runtime for the async decoders (one thread: the fuzzer runs one input at a time).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

/// An empty repository (cheapest key derivation), its storage and its key, made once.
pub fn fixture() -> &'static (Memory, MasterKey) {
    static FIXTURE: OnceLock<(Memory, MasterKey)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let memory = Memory::default();
        let options = InitOptions {
            kdf: KdfParams::CHEAPEST,
            ..InitOptions::default()
        };
        let repo = runtime()
            .block_on(Repository::init(
                Arc::new(memory.clone()),
                PASSWORD,
                options,
            ))
            .expect("a repository");
        (memory, repo.key().clone())
    })
}
