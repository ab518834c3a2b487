//! `prune`: frees the packs no snapshot needs any more, in two phases.
//!
//! Safe with backups running at the same time, without locks:
//! - a pack written less than `grace` ago is never a candidate (a running backup's packs are
//!   referenced by no snapshot until its snapshot object, the commit point, is written);
//! - a candidate is first only *marked* (`pending/<hash>`: the packs and the time), and deleted
//!   by a later prune at least `grace` after the mark, if it is still unused then. A backup
//!   that deduplicated against it meanwhile has committed (backups are assumed to finish within
//!   `grace`), so its snapshot now uses the pack and the pack stays.
//!
//! Crash-safe by order: the mark is written before anything goes; then one new index for the
//! packs that stay, then the index objects it replaces, then the packs, then the marks that are
//! done. An interruption leaves at worst unused packs, duplicate index entries or stale marks,
//! which the next prune cleans. Packs still partly in use are kept whole (no repacking yet).

use crate::repository::{Repository, RepositoryError};
use crate::stream::{Index, IndexedPack, pack_key};
use backup_core::ObjectStorageExt;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

/// What a prune did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    /// Packs deleted (unused, and marked at least the grace period ago).
    pub packs_deleted: usize,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Unused packs marked now: a prune after the grace period deletes them.
    pub packs_marked: usize,
    /// Unused packs marked earlier, not due yet.
    pub packs_awaiting: usize,
    /// Packs kept whole though only partly used.
    pub packs_partly_used: usize,
    /// Unused packs spared because they are younger than the grace period.
    pub packs_too_recent: usize,
    /// Index objects replaced by one.
    pub index_objects_replaced: usize,
}

/// A `pending/` object: packs found unused at `time`.
#[derive(Debug, Serialize, Deserialize)]
struct Mark {
    time: DateTime<Utc>,
    packs: BTreeSet<String>,
}

impl Repository {
    /// Marks the packs that hold no blob any snapshot uses and are older than `grace`, and
    /// deletes those marked at least `grace` before `now` that are still unused; with
    /// `dry_run`, only reports.
    pub async fn prune(
        &self,
        grace: Duration,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<PruneReport, RepositoryError> {
        // Every index object read once: the packs they list, and the index to read the
        // snapshots' trees with.
        let (index_objects, files): (Vec<String>, Vec<_>) =
            self.index_files().await?.into_iter().unzip();
        let mut packs: BTreeMap<String, IndexedPack> = BTreeMap::new();
        let mut index = Index::default();
        for pack in files.into_iter().flat_map(|f| f.packs) {
            index.add_pack(&pack);
            packs.entry(pack.id.clone()).or_insert(pack);
        }
        // Every chunk in use, trees' files included; a listing that cannot be read stops the
        // prune before anything is marked or deleted.
        let mut used: HashSet<String> = HashSet::new();
        for snapshot in self.snapshots().await? {
            used.extend(self.snapshot_chunks(&index, &snapshot).await?);
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
        // Unused: indexed packs none of whose blobs is used, and stored packs in no index (a
        // backup that died before writing its index).
        let mut unused: BTreeSet<String> = BTreeSet::new();
        for (id, pack) in &packs {
            let in_use = pack
                .blobs
                .iter()
                .filter(|b| used.contains(&b.id.to_hex()))
                .count();
            if in_use > 0 && in_use < pack.blobs.len() {
                report.packs_partly_used += 1;
            }
            if in_use == 0 && stored.contains_key(id) {
                unused.insert(id.clone());
            }
        }
        unused.extend(stored.keys().filter(|id| !packs.contains_key(*id)).cloned());
        let (unused, young): (BTreeSet<String>, BTreeSet<String>) =
            unused.into_iter().partition(|id| old_enough(id));
        report.packs_too_recent = young.len();

        let marks = self.read_marks().await?;
        let due: BTreeSet<&String> = marks
            .iter()
            .filter(|(_, mark)| mark.time <= cutoff)
            .flat_map(|(_, mark)| &mark.packs)
            .collect();
        let marked: BTreeSet<&String> = marks.iter().flat_map(|(_, m)| &m.packs).collect();
        let delete: Vec<String> = unused
            .iter()
            .filter(|id| due.contains(id))
            .cloned()
            .collect();
        let to_mark: BTreeSet<String> = unused
            .iter()
            .filter(|id| !marked.contains(id))
            .cloned()
            .collect();
        report.packs_deleted = delete.len();
        report.packs_marked = to_mark.len();
        report.packs_awaiting = unused.len() - delete.len() - to_mark.len();
        report.bytes_freed = delete
            .iter()
            .filter_map(|id| stored.get(id))
            .map(|(s, _)| s)
            .sum();
        if dry_run {
            return Ok(report);
        }
        if !to_mark.is_empty() {
            self.write_mark(&Mark {
                time: now,
                packs: to_mark,
            })
            .await?;
        }
        if !delete.is_empty() {
            // 1. One index for what stays. 2. The index objects it replaces. 3. The packs.
            let gone: HashSet<&String> = delete.iter().collect();
            let keep: Vec<IndexedPack> = packs
                .into_values()
                .filter(|p| !gone.contains(&p.id))
                .collect();
            let name = self.write_index_object(&keep).await?;
            for key in index_objects.iter().filter(|key| **key != name) {
                self.storage().delete(key).await?;
                report.index_objects_replaced += 1;
            }
            for id in &delete {
                self.storage().delete(&pack_key(id)).await?;
            }
        }
        // 4. The marks that are done (their packs deleted, or used again).
        for (key, mark) in &marks {
            if mark.time <= cutoff {
                self.storage().delete(key).await?;
            }
        }
        Ok(report)
    }

    async fn read_marks(&self) -> Result<Vec<(String, Mark)>, RepositoryError> {
        let mut marks = Vec::new();
        for object in self.storage().list_all("pending/").await? {
            let sealed = self.storage().get_bytes(&object.key).await?;
            let plain = self
                .key()
                .open(&sealed, object.key.as_bytes(), &object.key)?;
            let mark = serde_json::from_slice(&plain)
                .map_err(|e| RepositoryError::Corrupt(format!("{}: {e}", object.key)))?;
            marks.push((object.key, mark));
        }
        Ok(marks)
    }

    async fn write_mark(&self, mark: &Mark) -> Result<(), RepositoryError> {
        let plain = serde_json::to_vec(mark).expect("a mark serializes");
        let name = format!("pending/{}", blake3::hash(&plain).to_hex());
        let sealed = self.key().seal(&plain, name.as_bytes())?;
        self.storage().put_bytes(&name, Bytes::from(sealed)).await?;
        Ok(())
    }
}
