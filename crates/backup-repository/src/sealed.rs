//! Sealed objects (snapshots, index objects, prune marks, session markers): read with a
//! bound on their size, opened with the key (their name is bound to their content), parsed.
//! A listing of a prefix keeps what it could open and names what it could not, so that a
//! stray or forged object (anyone who can write to the bucket can plant one) never stops a
//! backup, a restore or a listing; what deletes data ([`Opened::all`]) refuses to go on
//! while anything cannot be read.

use crate::repository::{Repository, RepositoryError};
use backup_core::{ObjectMeta, ObjectStorageExt};
use bytes::BytesMut;
use futures::TryStreamExt;
use serde::de::DeserializeOwned;

/// The largest index object read (about 6 million blobs).
pub(crate) const MAX_INDEX_OBJECT: u64 = 1 << 30;
/// The largest snapshot, mark or marker read.
pub(crate) const MAX_SMALL_OBJECT: u64 = 64 << 20;

/// The objects of a prefix that could be opened, and those that could not.
pub(crate) struct Opened<T> {
    /// Key and content of each object opened, in key order.
    pub(crate) objects: Vec<(String, T)>,
    /// Each object that could not be, with why.
    pub(crate) unreadable: Vec<String>,
}

impl<T> Opened<T> {
    /// Every object, or an error naming the first that could not be read (for what deletes
    /// data: an unreadable object may be one that holds data alive).
    pub(crate) fn all(self) -> Result<Vec<(String, T)>, RepositoryError> {
        match self.unreadable.first() {
            None => Ok(self.objects),
            Some(first) => Err(RepositoryError::Corrupt(format!(
                "{first} (nothing is deleted while an object cannot be read; remove it if the \
                 repository did not write it)"
            ))),
        }
    }

    /// The objects that could be opened; each that could not is logged as a warning.
    pub(crate) fn readable(self) -> Vec<(String, T)> {
        for problem in &self.unreadable {
            tracing::warn!("skipped {problem}");
        }
        self.objects
    }
}

impl Repository {
    /// Reads, opens and parses one listed sealed object of at most `limit` bytes: refused by
    /// its listed size before any read, and its body never held past the limit (an object
    /// replaced by a larger one after the listing is refused too). One request.
    async fn read_sealed<T: DeserializeOwned>(
        &self,
        object: &ObjectMeta,
        limit: u64,
    ) -> Result<T, RepositoryError> {
        let key = object.key.as_str();
        let too_large = |size: u64| {
            RepositoryError::Corrupt(format!(
                "{key}: {size} bytes, more than the {limit} such an object may have"
            ))
        };
        if object.size > limit {
            return Err(too_large(object.size));
        }
        let mut body = self.storage().get(key, None).await?;
        let mut sealed = BytesMut::with_capacity(object.size as usize);
        while let Some(piece) = body.try_next().await? {
            if (sealed.len() + piece.len()) as u64 > limit {
                return Err(too_large((sealed.len() + piece.len()) as u64));
            }
            sealed.extend_from_slice(&piece);
        }
        let plain = self.key().open(&sealed, key.as_bytes(), key)?;
        serde_json::from_slice(&plain).map_err(|e| RepositoryError::Corrupt(format!("{key}: {e}")))
    }

    /// Every object under `prefix`, opened (see [`Opened`]). Storage failures other than an
    /// object deleted meanwhile fail the call.
    pub(crate) async fn open_all<T: DeserializeOwned>(
        &self,
        prefix: &str,
        limit: u64,
    ) -> Result<Opened<T>, RepositoryError> {
        let mut opened = Opened {
            objects: Vec::new(),
            unreadable: Vec::new(),
        };
        for object in self.storage().list_all(prefix).await? {
            match self.read_sealed(&object, limit).await {
                Ok(content) => opened.objects.push((object.key, content)),
                Err(RepositoryError::Storage(e)) if e.is_not_found() => {}
                Err(error @ RepositoryError::Storage(_)) => return Err(error),
                Err(error) => opened.unreadable.push(format!("{}: {error}", object.key)),
            }
        }
        Ok(opened)
    }
}
