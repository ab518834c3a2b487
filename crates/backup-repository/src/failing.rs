//! Test storage that fails chosen writes (a server refusing one upload, then taking the next
//! ones): how the repository is proven never to commit what it could not store.

use async_trait::async_trait;
use backup_core::storage::{Listing, PutOptions};
use backup_core::{ByteStream, ObjectMeta, ObjectStorage, StorageError};
use futures::stream::BoxStream;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Storage over `inner` whose `fail`-th write (counted from 1) below `prefix` fails.
#[derive(Debug)]
pub(crate) struct FailingStorage {
    inner: Arc<dyn ObjectStorage>,
    prefix: &'static str,
    fail: usize,
    writes: AtomicUsize,
}

impl FailingStorage {
    pub(crate) fn new(inner: Arc<dyn ObjectStorage>, prefix: &'static str, fail: usize) -> Self {
        Self {
            inner,
            prefix,
            fail,
            writes: AtomicUsize::new(0),
        }
    }

    /// Whether this write fails.
    fn fails(&self, key: &str) -> bool {
        key.starts_with(self.prefix) && self.writes.fetch_add(1, Ordering::SeqCst) + 1 == self.fail
    }

    fn refused(key: &str) -> StorageError {
        StorageError::Other {
            backend: "test".into(),
            detail: format!("injected failure writing {key}"),
        }
    }
}

#[async_trait]
impl ObjectStorage for FailingStorage {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        options: PutOptions,
    ) -> Result<ObjectMeta, StorageError> {
        if self.fails(key) {
            return Err(Self::refused(key));
        }
        self.inner.put_stream(key, body, options).await
    }

    async fn put_if_absent(
        &self,
        key: &str,
        body: bytes::Bytes,
    ) -> Result<ObjectMeta, StorageError> {
        if self.fails(key) {
            return Err(Self::refused(key));
        }
        self.inner.put_if_absent(key, body).await
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream, StorageError> {
        self.inner.get(key, range).await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        self.inner.head(key).await
    }

    fn list(&self, prefix: &str) -> BoxStream<'static, Result<ObjectMeta, StorageError>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: &str) -> Result<Listing, StorageError> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.inner.delete(key).await
    }
}
