//! `prune`: frees the packs no snapshot needs any more.
//!
//! Safe with a backup running at the same time, without locks, by a grace period: a pack
//! written less than `grace` ago is never deleted (a running backup's packs are referenced by
//! no snapshot until its snapshot object is written, its commit point). Crash-safe by order:
//! the new index is written first, then the index objects it replaces are deleted, then the
//! packs; an interruption leaves at worst unreferenced packs or duplicate index entries, which
//! the next prune cleans. Packs still partly in use are kept whole (no repacking yet).

use crate::repository::{Repository, RepositoryError};
use crate::stream::{IndexFile, IndexedPack, pack_key};
use backup_core::ObjectStorageExt;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// What a prune did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    /// Packs deleted (no blob of theirs is used).
    pub packs_deleted: usize,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Packs kept whole though only partly used.
    pub packs_partly_used: usize,
    /// Unused packs spared because they are younger than the grace period.
    pub packs_too_recent: usize,
    /// Index objects replaced by one.
    pub index_objects_replaced: usize,
}

impl Repository {
    /// Deletes the packs that hold no blob any snapshot uses and are older than `grace`
    /// (`now` is the reference time); with `dry_run`, only reports.
    pub async fn prune(
        &self,
        grace: Duration,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<PruneReport, RepositoryError> {
        // Every chunk in use, trees' files included; a listing that cannot be read stops the
        // prune before anything is deleted.
        let index = self.load_index().await?;
        let mut used: HashSet<String> = HashSet::new();
        for snapshot in self.snapshots().await? {
            used.extend(self.snapshot_chunks(&index, &snapshot).await?);
        }
        let index_objects = self.storage().list_all("index/").await?;
        let mut packs: BTreeMap<String, IndexedPack> = BTreeMap::new();
        for object in &index_objects {
            for pack in self.read_index_file(&object.key).await?.packs {
                packs.entry(pack.id.clone()).or_insert(pack);
            }
        }
        let stored: BTreeMap<String, (u64, Option<DateTime<Utc>>)> = self
            .storage()
            .list_all("data/")
            .await?
            .into_iter()
            .filter_map(|o| {
                let id = o.key.rsplit('/').next()?.to_owned();
                Some((id, (o.size, o.last_modified)))
            })
            .collect();
        let cutoff = now - chrono::Duration::from_std(grace).unwrap_or_default();
        let old_enough = |id: &str| {
            stored
                .get(id)
                .and_then(|(_, modified)| *modified)
                .is_some_and(|m| m < cutoff)
        };
        let mut report = PruneReport::default();
        let mut delete: Vec<String> = Vec::new();
        let mut keep: Vec<IndexedPack> = Vec::new();
        for (id, pack) in packs {
            let in_use = pack
                .blobs
                .iter()
                .filter(|b| used.contains(&b.id.to_hex()))
                .count();
            if in_use == 0 && old_enough(&id) {
                delete.push(id);
            } else {
                if in_use == 0 {
                    report.packs_too_recent += 1;
                } else if in_use < pack.blobs.len() {
                    report.packs_partly_used += 1;
                }
                keep.push(pack);
            }
        }
        // Packs in no index (a backup that died before writing its index) go too, when old.
        let indexed: HashSet<String> = keep
            .iter()
            .map(|p| p.id.clone())
            .chain(delete.iter().cloned())
            .collect();
        for id in stored.keys().filter(|id| !indexed.contains(*id)) {
            if old_enough(id) {
                delete.push(id.clone());
            } else {
                report.packs_too_recent += 1;
            }
        }
        report.packs_deleted = delete.len();
        report.bytes_freed = delete
            .iter()
            .filter_map(|id| stored.get(id))
            .map(|(s, _)| s)
            .sum();
        if delete.is_empty() || dry_run {
            return Ok(report);
        }
        // 1. One index for what stays. 2. The index objects it replaces. 3. The packs.
        let plain = serde_json::to_vec(&IndexFile { packs: keep }).expect("index serializes");
        let name = format!("index/{}", blake3::hash(&plain).to_hex());
        let sealed = self.key().seal(&plain, name.as_bytes())?;
        self.storage().put_bytes(&name, Bytes::from(sealed)).await?;
        for object in index_objects.iter().filter(|o| o.key != name) {
            self.storage().delete(&object.key).await?;
            report.index_objects_replaced += 1;
        }
        for id in &delete {
            self.storage().delete(&pack_key(id)).await?;
        }
        Ok(report)
    }
}
