//! The object storage trait: what kbackup needs from S3, MinIO, Azure Blob, GCS, a local
//! directory or memory. Implemented in `backup-storage`; tested here with mocks.

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use serde::Serialize;
use std::fmt;
use std::ops::Range;

/// A stream of bytes read from or written to storage.
pub type ByteStream = BoxStream<'static, Result<Bytes, StorageError>>;

/// What storage knows about one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Key relative to the storage location's prefix.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, as the server reports it.
    pub last_modified: Option<DateTime<Utc>>,
    /// Entity tag, when the server gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// One level of a listing split on `/`: objects directly under the prefix, and the
/// "directories" below it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Listing {
    /// Objects directly under the prefix.
    pub objects: Vec<ObjectMeta>,
    /// Common prefixes (each ends before the next `/`).
    pub prefixes: Vec<String>,
}

/// How a streamed upload is cut and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOptions {
    /// Size of each part of a multipart upload; also the most one part holds in memory.
    pub part_size: usize,
    /// Parts in flight at once. Memory used is about `part_size * (concurrency + 1)`.
    pub concurrency: usize,
}

impl Default for PutOptions {
    fn default() -> Self {
        Self {
            part_size: 8 * 1024 * 1024,
            concurrency: 4,
        }
    }
}

/// Why a storage call failed, named so that a person can act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The object does not exist.
    #[error("object '{key}' not found")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// A conditional create found the object already there.
    #[error("object '{key}' already exists")]
    AlreadyExists {
        /// The key written.
        key: String,
    },
    /// The bucket or container does not exist.
    #[error("bucket, container or directory '{bucket}' does not exist (create it first)")]
    BucketNotFound {
        /// Its name.
        bucket: String,
    },
    /// The credentials were refused.
    #[error("access denied by {location}: {detail} (check the access key and secret)")]
    AccessDenied {
        /// Where (no secrets).
        location: String,
        /// What the server said.
        detail: String,
    },
    /// The endpoint could not be reached.
    #[error("cannot reach {endpoint}: {detail}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The transport's reason.
        detail: String,
    },
    /// TLS failed (certificate, protocol).
    #[error("TLS error talking to {endpoint}: {detail}")]
    Tls {
        /// The endpoint.
        endpoint: String,
        /// The reason.
        detail: String,
    },
    /// The location or the request is not valid.
    #[error("invalid storage request: {0}")]
    Invalid(String),
    /// Local I/O failed (reading the input, writing the output).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Anything else the backend reported.
    #[error("{backend} error: {detail}")]
    Other {
        /// The backend (`s3`, `azure`, `local`, ...).
        backend: String,
        /// Its message, secrets removed.
        detail: String,
    },
}

impl StorageError {
    /// Whether the error says the object is missing.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }
}

/// An object store. A handful of required methods; [`ObjectStorageExt`] adds the rest.
///
/// Keys are relative to the location the storage was opened on and use `/` as separator.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ObjectStorage: Send + Sync + fmt::Debug {
    /// Where this storage points, for messages (never contains secrets).
    fn location(&self) -> String;

    /// Writes an object from a stream, in parts as the data arrives (multipart where the
    /// backend has it), holding at most about `part_size * (concurrency + 1)` bytes. The object
    /// appears only when the whole stream was written; on error nothing is left behind.
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        options: PutOptions,
    ) -> Result<ObjectMeta, StorageError>;

    /// Writes an object only if no object has that key (an atomic create).
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<ObjectMeta, StorageError>;

    /// Reads an object, or the byte range of it, as a stream.
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream, StorageError>;

    /// Reads an object's metadata.
    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError>;

    /// Lists every object below a prefix (all pages, fetched as the stream is read).
    fn list(&self, prefix: &str) -> BoxStream<'static, Result<ObjectMeta, StorageError>>;

    /// Lists one level below a prefix, split on `/`, objects and prefixes sorted by key.
    async fn list_with_delimiter(&self, prefix: &str) -> Result<Listing, StorageError>;

    /// Deletes an object; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
}

/// Conveniences over any [`ObjectStorage`].
#[async_trait]
pub trait ObjectStorageExt: ObjectStorage {
    /// Writes a small object in one piece.
    async fn put_bytes(&self, key: &str, body: Bytes) -> Result<ObjectMeta, StorageError> {
        let body: ByteStream = stream::once(async move { Ok(body) }).boxed();
        self.put_stream(key, body, PutOptions::default()).await
    }

    /// Reads a whole object into memory: for small objects only (configs, indexes).
    async fn get_bytes(&self, key: &str) -> Result<Bytes, StorageError> {
        self.get_range_bytes(key, None).await
    }

    /// Reads an object, or `range` of it, into memory; no copy when it arrives in one piece.
    async fn get_range_bytes(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<Bytes, StorageError> {
        let capacity = range.as_ref().map_or(0, |r| (r.end - r.start) as usize);
        let mut stream = self.get(key, range).await?;
        let Some(first) = stream.try_next().await? else {
            return Ok(Bytes::new());
        };
        let Some(second) = stream.try_next().await? else {
            return Ok(first);
        };
        let mut out = BytesMut::with_capacity(capacity.max(first.len() + second.len()));
        out.extend_from_slice(&first);
        out.extend_from_slice(&second);
        while let Some(piece) = stream.try_next().await? {
            out.extend_from_slice(&piece);
        }
        Ok(out.freeze())
    }

    /// Whether an object exists.
    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match self.head(key).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every object below a prefix, sorted by key.
    async fn list_all(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let mut all: Vec<ObjectMeta> = self.list(prefix).try_collect().await?;
        all.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(all)
    }
}

impl<T: ObjectStorage + ?Sized> ObjectStorageExt for T {}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.into(),
            size: 1,
            last_modified: None,
            etag: None,
        }
    }

    #[tokio::test]
    async fn get_bytes_joins_the_stream() {
        let mut storage = MockObjectStorage::new();
        storage.expect_get().returning(|_, _| {
            let parts = vec![
                Ok(Bytes::from_static(b"hello ")),
                Ok(Bytes::from_static(b"world")),
            ];
            Ok(stream::iter(parts).boxed())
        });
        assert_eq!(storage.get_bytes("k").await.unwrap(), "hello world");
    }

    #[tokio::test]
    async fn get_bytes_passes_a_mid_stream_error_on() {
        let mut storage = MockObjectStorage::new();
        storage.expect_get().returning(|_, _| {
            let parts = vec![
                Ok(Bytes::from_static(b"he")),
                Err(StorageError::Invalid("cut".into())),
            ];
            Ok(stream::iter(parts).boxed())
        });
        assert!(matches!(
            storage.get_bytes("k").await,
            Err(StorageError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn exists_maps_not_found_to_false_and_keeps_other_errors() {
        let mut storage = MockObjectStorage::new();
        storage
            .expect_head()
            .withf(|k| k == "there")
            .returning(|k| Ok(meta(k)));
        storage
            .expect_head()
            .withf(|k| k == "gone")
            .returning(|k| Err(StorageError::NotFound { key: k.into() }));
        storage
            .expect_head()
            .withf(|k| k == "denied")
            .returning(|_| {
                Err(StorageError::AccessDenied {
                    location: "s3://b".into(),
                    detail: "403".into(),
                })
            });
        assert!(storage.exists("there").await.unwrap());
        assert!(!storage.exists("gone").await.unwrap());
        assert!(storage.exists("denied").await.is_err());
    }

    #[tokio::test]
    async fn put_bytes_sends_one_chunk() {
        let mut storage = MockObjectStorage::new();
        storage.expect_put_stream().returning(|key, body, _| {
            let chunks = futures::executor::block_on(body.try_collect::<Vec<_>>()).unwrap();
            assert_eq!(chunks, vec![Bytes::from_static(b"abc")]);
            Ok(meta(key))
        });
        assert_eq!(
            storage
                .put_bytes("k", Bytes::from_static(b"abc"))
                .await
                .unwrap()
                .key,
            "k"
        );
    }

    #[tokio::test]
    async fn list_all_sorts_by_key() {
        let mut storage = MockObjectStorage::new();
        storage
            .expect_list()
            .returning(|_| stream::iter(vec![Ok(meta("b")), Ok(meta("a"))]).boxed());
        let keys: Vec<_> = storage
            .list_all("")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(keys, ["a", "b"]);
    }

    #[test]
    fn errors_name_the_cause() {
        let e = StorageError::BucketNotFound {
            bucket: "sts-backup".into(),
        };
        assert_eq!(
            e.to_string(),
            "bucket, container or directory 'sts-backup' does not exist (create it first)"
        );
    }
}
