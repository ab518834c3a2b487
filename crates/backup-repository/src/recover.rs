//! What a backup needs to know when it starts: the index it may deduplicate against, and
//! what a killed backup left behind.
//!
//! - **Session markers.** A backup writes `sessions/<random>` before it uploads anything and
//!   deletes it when its last index object is written. A marker found at the start of a
//!   backup means a backup died (or is running): the packs in `data/` that no index lists are
//!   then read, verified (content against id, sealed header, every blob decrypted and
//!   checked against its id), and their blobs not indexed already listed in one new index
//!   object, so the new backup reuses them instead of uploading them again. Without a marker
//!   nothing is listed: a normal backup does not walk `data/`.
//! - **Packs a prune marked unused** (`pending/`) are left out of the deduplication: the
//!   prune deletes them after its grace period, and a backup that started after the mark may
//!   run past it. Chunks found only in them are stored again.

use crate::crypto::MasterKey;
use crate::index::{Index, IndexedPack, pack_id_of, pack_key};
use crate::pack::{BlobLocation, read_header, verify_blob, verify_id};
use crate::repository::{Repository, RepositoryError, random_hex};
use crate::stream::PACK_TARGET;
use backup_core::ObjectStorageExt;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use std::collections::HashSet;

/// Packs read at the same time while adopting.
const ADOPT_READS: usize = 2;
/// Larger objects under `data/` are not read for adoption (packs are cut at 16 MiB).
const MAX_ADOPTED_PACK: u64 = 4 * PACK_TARGET as u64;

/// A pack's blobs when all of them authenticate; else why not.
fn authentic_blobs(key: &MasterKey, id: &str, bytes: &[u8]) -> Result<Vec<BlobLocation>, String> {
    if !verify_id(id, bytes) {
        return Err("content does not match its id".into());
    }
    let blobs = read_header(key, id, bytes).map_err(|e| e.to_string())?;
    for blob in &blobs {
        verify_blob(key, bytes, blob)?;
    }
    Ok(blobs)
}

/// The content of a `sessions/` marker.
#[derive(Serialize)]
struct SessionMarker {
    started: DateTime<Utc>,
}

/// A backup's starting point: see the module documentation.
pub(crate) struct Start {
    /// Every indexed blob, adopted packs included.
    pub(crate) index: Index,
    /// Packs a prune marked unused: not deduplicated against.
    pub(crate) doomed: HashSet<String>,
    /// This backup's marker and those found at its start, deleted when it has indexed all
    /// it uploaded.
    pub(crate) markers: Vec<String>,
    /// Packs adopted from killed backups.
    pub(crate) adopted: usize,
}

impl Repository {
    /// Writes this backup's session marker, loads the index, and adopts the unindexed packs
    /// of killed backups if any marker says there may be some.
    pub(crate) async fn start_backup(&self) -> Result<Start, RepositoryError> {
        let own = self.write_session_marker().await?;
        let mut markers: Vec<String> = self
            .storage()
            .list_all("sessions/")
            .await?
            .into_iter()
            .map(|o| o.key)
            .filter(|key| *key != own)
            .collect();
        let doomed: HashSet<String> = self
            .read_marks()
            .await?
            .readable()
            .into_iter()
            .flat_map(|(_, mark)| mark.packs)
            .collect();
        let mut index = self.load_index().await?;
        let mut adopted = 0;
        if !markers.is_empty() {
            let packs = self.unindexed_packs(&index, &doomed).await?;
            if !packs.is_empty() {
                self.write_index_object(&packs).await?;
                for pack in &packs {
                    index.add_pack(pack);
                }
                adopted = packs.len();
            }
        }
        markers.push(own);
        Ok(Start {
            index,
            doomed,
            markers,
            adopted,
        })
    }

    /// Stored packs in no index and not marked unused whose every blob authenticates (the
    /// pack's bytes match its id, its sealed header opens, each blob decrypts and matches
    /// its id: a writer without the key can forge none of these), each listing only its
    /// blobs not indexed already; any other pack is left for `prune`.
    async fn unindexed_packs(
        &self,
        indexed: &Index,
        doomed: &HashSet<String>,
    ) -> Result<Vec<IndexedPack>, RepositoryError> {
        let packs: HashSet<&str> = indexed.entries().map(|(pack, _)| pack).collect();
        let mut orphans: Vec<String> = Vec::new();
        for object in self.storage().list_all("data/").await? {
            let Some(id) = pack_id_of(&object.key) else {
                tracing::warn!("{}: not a pack's name, ignored", object.key);
                continue;
            };
            if packs.contains(id) || doomed.contains(id) {
                continue;
            }
            if object.size > MAX_ADOPTED_PACK {
                tracing::warn!(
                    "{}: {} bytes, larger than any pack, not adopted",
                    object.key,
                    object.size
                );
                continue;
            }
            orphans.push(id.to_owned());
        }
        let read = futures::stream::iter(orphans)
            .map(|id| async move {
                let bytes = match self.storage().get_bytes(&pack_key(&id)).await {
                    Ok(bytes) => bytes,
                    // Deleted meanwhile by a prune: nothing to adopt.
                    Err(e) if e.is_not_found() => return Ok(None),
                    Err(e) => return Err(RepositoryError::from(e)),
                };
                let key = self.key().clone();
                let checked = tokio::task::spawn_blocking(move || {
                    let verified = authentic_blobs(&key, &id, &bytes);
                    (id, verified)
                });
                let (id, verified) = checked.await?;
                Ok(match verified {
                    Ok(blobs) => Some(IndexedPack { id, blobs }),
                    Err(why) => {
                        tracing::warn!("{}: not adopted: {why}", pack_key(&id));
                        None
                    }
                })
            })
            .buffer_unordered(ADOPT_READS)
            .try_filter_map(|pack| async move { Ok(pack) });
        let mut adopted: Vec<IndexedPack> = read.try_collect().await?;
        for pack in &mut adopted {
            pack.blobs.retain(|blob| !indexed.contains(&blob.id));
        }
        adopted.retain(|pack| !pack.blobs.is_empty());
        Ok(adopted)
    }

    async fn write_session_marker(&self) -> Result<String, RepositoryError> {
        let name = format!("sessions/{}", random_hex(16)?);
        let plain = serde_json::to_vec(&SessionMarker {
            started: Utc::now(),
        })
        .expect("a session marker serializes");
        let sealed = self.key().seal(&plain, name.as_bytes())?;
        self.storage().put_bytes(&name, Bytes::from(sealed)).await?;
        Ok(name)
    }

    /// Deletes session markers (one already gone is no error).
    pub(crate) async fn end_sessions(&self, markers: &[String]) -> Result<(), RepositoryError> {
        for key in markers {
            match self.storage().delete(key).await {
                Err(e) if !e.is_not_found() => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }
}
