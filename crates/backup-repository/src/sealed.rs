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

/// The first bytes of a zstd frame: compressed metadata starts with them, JSON never does.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// The zstd level of compressed metadata.
const METADATA_LEVEL: i32 = 3;

/// Metadata JSON as stored: compressed when `compress` (format 2 on; its hex ids and
/// repeated field names shrink to less than half), else as it is.
pub(crate) fn stored_metadata(json: Vec<u8>, compress: bool) -> Vec<u8> {
    match compress {
        true => zstd::bulk::compress(&json, METADATA_LEVEL).expect("zstd compresses a buffer"),
        false => json,
    }
}

/// The JSON of stored metadata (compressed or not), refused past `limit` bytes (a small
/// frame may claim any size: it is decoded as a bounded stream, never allocated up front).
pub(crate) fn metadata_json(stored: Vec<u8>, limit: u64) -> Result<Vec<u8>, String> {
    if !stored.starts_with(&ZSTD_MAGIC) {
        return Ok(stored);
    }
    use std::io::Read;
    let mut json = Vec::new();
    zstd::stream::read::Decoder::new(stored.as_slice())
        .and_then(|decoder| decoder.take(limit + 1).read_to_end(&mut json))
        .map_err(|e| format!("compressed metadata: {e}"))?;
    if json.len() as u64 > limit {
        return Err(format!("decompresses to more than {limit} bytes"));
    }
    Ok(json)
}

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
        let corrupt = |e: String| RepositoryError::Corrupt(format!("{key}: {e}"));
        let plain = self.key().open(&sealed, key.as_bytes(), key)?;
        let json = metadata_json(plain, limit).map_err(corrupt)?;
        serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_read_compressed_or_as_format_1_wrote_it() {
        let json = br#"{"packs":[{"id":"ab","blobs":[]}]}"#.repeat(100);
        let compressed = stored_metadata(json.clone(), true);
        assert!(compressed.len() * 4 < json.len(), "{}", compressed.len());
        assert_eq!(metadata_json(compressed, 1 << 20).unwrap(), json);
        assert_eq!(stored_metadata(json.clone(), false), json);
        assert_eq!(metadata_json(json.clone(), 1 << 20).unwrap(), json);
    }

    #[test]
    fn a_frame_that_decompresses_past_the_limit_is_refused() {
        let bomb = stored_metadata(vec![b' '; 10 << 20], true);
        assert!(bomb.len() < 4096);
        let error = metadata_json(bomb, 1 << 20).unwrap_err();
        assert!(error.contains("more than 1048576 bytes"), "{error}");
        let mut damaged = stored_metadata(b"[1,2,3]".repeat(50), true);
        let last = damaged.len() - 1;
        damaged.truncate(last);
        assert!(metadata_json(damaged, 1 << 20).is_err());
    }
}
