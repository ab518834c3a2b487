//! [`ObjectStorage`] over any `object_store` backend, below a key prefix.

use crate::error::ErrorContext;
use async_trait::async_trait;
use backup_core::storage::{Listing, ObjectMeta, PutOptions};
use backup_core::{ByteStream, ObjectStorage, RepositoryLocation, StorageError};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, PutMode, PutPayload,
    PutPayloadMut, WriteMultipart,
};
use std::fmt;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

/// Local files are read in pieces of this size (object_store's own stream reads 8 KiB at a
/// time, each on a blocking thread: a quarter of a million thread hand-offs for 2 GiB).
const FILE_PIECE: u64 = 1024 * 1024;

/// `range` of a local file as a stream of pieces, each read on a blocking thread.
fn file_pieces(file: std::fs::File, path: PathBuf, range: Range<u64>) -> ByteStream {
    let file = Arc::new(file);
    futures::stream::try_unfold(range, move |range| {
        let (file, path) = (file.clone(), path.clone());
        async move {
            if range.is_empty() {
                return Ok(None);
            }
            let length = (range.end - range.start).min(FILE_PIECE);
            let piece = tokio::task::spawn_blocking(move || {
                let mut piece = vec![0; length as usize];
                file.read_exact_at(&mut piece, range.start)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
                    .map(|()| piece)
            })
            .await
            .map_err(std::io::Error::other)??;
            Ok(Some((Bytes::from(piece), range.start + length..range.end)))
        }
    })
    .boxed()
}

/// An object_store backend seen through kbackup's storage trait.
pub(crate) struct ObjectStoreStorage {
    inner: Arc<dyn ObjectStore>,
    prefix: String,
    context: ErrorContext,
}

impl ObjectStoreStorage {
    pub fn new(
        inner: Arc<dyn ObjectStore>,
        location: &RepositoryLocation,
        backend: &'static str,
        endpoint: String,
    ) -> Self {
        let bucket = if location.bucket.is_empty() {
            location.to_string()
        } else {
            location.bucket.clone()
        };
        let context = ErrorContext {
            backend,
            location: location.to_string(),
            bucket,
            endpoint,
        };
        Self {
            inner,
            prefix: location.prefix.clone(),
            context,
        }
    }

    fn context(&self) -> &ErrorContext {
        &self.context
    }

    fn path(&self, key: &str) -> Result<Path, StorageError> {
        let key = key.trim_matches('/');
        if key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(StorageError::Invalid(format!("invalid object key '{key}'")));
        }
        let full = if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        };
        Path::parse(&full)
            .map_err(|e| StorageError::Invalid(format!("invalid object key '{key}': {e}")))
    }

    fn prefix_path(&self, prefix: &str) -> Option<Path> {
        let joined = [self.prefix.as_str(), prefix.trim_matches('/')]
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("/");
        (!joined.is_empty()).then(|| Path::from(joined))
    }

    fn relative(prefix: &str, path: &Path) -> String {
        let full = path.as_ref();
        if prefix.is_empty() {
            full.to_owned()
        } else {
            full.strip_prefix(prefix)
                .unwrap_or(full)
                .trim_start_matches('/')
                .to_owned()
        }
    }

    fn meta(prefix: &str, meta: object_store::ObjectMeta) -> ObjectMeta {
        ObjectMeta {
            key: Self::relative(prefix, &meta.location),
            size: meta.size,
            last_modified: Some(meta.last_modified),
            etag: meta.e_tag,
        }
    }

    async fn multipart(
        &self,
        path: &Path,
        key: &str,
        first: PutPayload,
        mut body: ByteStream,
        options: PutOptions,
    ) -> Result<ObjectMeta, StorageError> {
        let upload = self
            .inner
            .put_multipart(path)
            .await
            .map_err(|e| self.context().convert(key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, options.part_size);
        for chunk in first.iter() {
            writer.put(chunk.clone());
        }
        let mut size = first.content_length() as u64;
        let failure = loop {
            let chunk = match body.next().await {
                None => break None,
                Some(Err(e)) => break Some(e),
                Some(Ok(chunk)) => chunk,
            };
            if let Err(e) = writer.wait_for_capacity(options.concurrency).await {
                break Some(self.context().convert(key, e));
            }
            size += chunk.len() as u64;
            writer.put(chunk);
        };
        if let Some(error) = failure {
            // Best effort: the upload was never completed, so nothing is visible either way.
            let _ = writer.abort().await;
            return Err(error);
        }
        let result = writer
            .finish()
            .await
            .map_err(|e| self.context().convert(key, e))?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size,
            last_modified: None,
            etag: result.e_tag,
        })
    }
}

impl fmt::Debug for ObjectStoreStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectStoreStorage({})", self.context.location)
    }
}

#[async_trait]
impl ObjectStorage for ObjectStoreStorage {
    fn location(&self) -> String {
        self.context.location.clone()
    }

    async fn put_stream(
        &self,
        key: &str,
        mut body: ByteStream,
        options: PutOptions,
    ) -> Result<ObjectMeta, StorageError> {
        let path = self.path(key)?;
        // Buffer up to one part: small objects go in one PUT, larger ones as a multipart upload.
        let mut first = PutPayloadMut::new();
        while first.content_length() < options.part_size {
            match body.next().await {
                Some(chunk) => first.push(chunk?),
                None => {
                    let payload = first.freeze();
                    let size = payload.content_length() as u64;
                    let result = self
                        .inner
                        .put(&path, payload)
                        .await
                        .map_err(|e| self.context().convert(key, e))?;
                    return Ok(ObjectMeta {
                        key: key.to_owned(),
                        size,
                        last_modified: None,
                        etag: result.e_tag,
                    });
                }
            }
        }
        self.multipart(&path, key, first.freeze(), body, options)
            .await
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<ObjectMeta, StorageError> {
        let path = self.path(key)?;
        let size = body.len() as u64;
        let result = self
            .inner
            .put_opts(&path, body.into(), PutMode::Create.into())
            .await
            .map_err(|e| self.context().convert(key, e))?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size,
            last_modified: None,
            etag: result.e_tag,
        })
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream, StorageError> {
        let path = self.path(key)?;
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        let result = self
            .inner
            .get_opts(&path, options)
            .await
            .map_err(|e| self.context().convert(key, e))?;
        if let GetResultPayload::File(file, path) = result.payload {
            return Ok(file_pieces(file, path, result.range));
        }
        let (context, key) = (self.context.clone(), key.to_owned());
        Ok(result
            .into_stream()
            .map(move |chunk| chunk.map_err(|e| context.convert(&key, e)))
            .boxed())
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let path = self.path(key)?;
        let meta = self
            .inner
            .head(&path)
            .await
            .map_err(|e| self.context().convert(key, e))?;
        Ok(Self::meta(&self.prefix, meta))
    }

    fn list(&self, prefix: &str) -> BoxStream<'static, Result<ObjectMeta, StorageError>> {
        let base = self.prefix.clone();
        let (context, key) = (self.context.clone(), prefix.to_owned());
        self.inner
            .list(self.prefix_path(prefix).as_ref())
            .map(move |item| {
                item.map(|meta| Self::meta(&base, meta))
                    .map_err(|e| context.convert(&key, e))
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: &str) -> Result<Listing, StorageError> {
        let result = self
            .inner
            .list_with_delimiter(self.prefix_path(prefix).as_ref())
            .await
            .map_err(|e| self.context().convert(prefix, e))?;
        let mut listing = Listing {
            objects: result
                .objects
                .into_iter()
                .map(|m| Self::meta(&self.prefix, m))
                .collect(),
            prefixes: result
                .common_prefixes
                .iter()
                .map(|p| Self::relative(&self.prefix, p))
                .collect(),
        };
        // Local directories come back in directory order; the contract is key order.
        listing.objects.sort_by(|a, b| a.key.cmp(&b.key));
        listing.prefixes.sort();
        Ok(listing)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key)?;
        match self.inner.delete(&path).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.context().convert(key, e)),
        }
    }
}
