//! Deleting from a storage: named objects, or everything below a location (a repository
//! wiped out), as the listing streams, a bounded number at a time.

use backup_core::{ObjectStorage, StorageError};
use futures::{Stream, TryStreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Objects deleted at once.
const DELETES_AT_ONCE: usize = 16;

/// Deletes every object below `storage`: how many.
pub async fn delete_all(storage: &dyn ObjectStorage) -> Result<usize, StorageError> {
    delete_each(storage, storage.list("").map_ok(|meta| meta.key)).await
}

/// Deletes the objects `keys` of `storage` (one that is absent is no error): how many.
pub async fn delete_keys(
    storage: &dyn ObjectStorage,
    keys: &[String],
) -> Result<usize, StorageError> {
    delete_each(storage, futures::stream::iter(keys.iter().cloned().map(Ok))).await
}

/// Deletes each key as `keys` yields it, [`DELETES_AT_ONCE`] at a time: how many.
async fn delete_each(
    storage: &dyn ObjectStorage,
    keys: impl Stream<Item = Result<String, StorageError>>,
) -> Result<usize, StorageError> {
    let deleted = AtomicUsize::new(0);
    keys.try_for_each_concurrent(DELETES_AT_ONCE, |key| {
        let deleted = &deleted;
        async move {
            storage.delete(&key).await?;
            deleted.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    })
    .await?;
    Ok(deleted.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::{ObjectStorageExt, RepositoryLocation};

    #[tokio::test]
    async fn every_object_below_is_deleted_or_only_those_named() {
        let location = RepositoryLocation::parse("memory://apps").unwrap();
        let storage = backup_storage::open(&location, &Default::default())
            .await
            .unwrap();
        for key in ["config", "data/ab/1", "snapshots/1", "snapshots/2"] {
            storage
                .put_bytes(key, bytes::Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        let named = ["snapshots/1".to_owned(), "snapshots/gone".to_owned()];
        assert_eq!(delete_keys(storage.as_ref(), &named).await.unwrap(), 2);
        assert_eq!(storage.list_all("snapshots/").await.unwrap().len(), 1);
        assert_eq!(delete_all(storage.as_ref()).await.unwrap(), 3);
        assert!(storage.list_all("").await.unwrap().is_empty());
    }
}
