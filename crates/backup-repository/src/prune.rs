//! `prune`: frees the space no snapshot needs any more, in two phases.
//!
//! A pack is **replaceable** when every blob of it that a snapshot uses is also in another
//! stored pack that stays: a pack no snapshot uses at all, or one whose used blobs were
//! copied elsewhere (repacked, or stored again by a backup).
//!
//! Safe with backups running at the same time, without locks:
//! - a pack written less than `grace` ago is never a candidate (a running backup's packs are
//!   referenced by no snapshot until its snapshot object, the commit point, is written);
//! - a candidate is first only *marked* (`pending/<hash>`: the packs and the time), and deleted
//!   by a later prune at least `grace` after the mark, if it is still replaceable then. A
//!   backup that deduplicated against it meanwhile either started before the mark and has
//!   committed (backups are assumed to finish within `grace`), so its blobs count as used, or
//!   started after the mark and left the marked packs out of its deduplication
//!   ([`crate::recover`]).
//! - **Repacking**: a partly used pack with at least `repack_unused` percent of its bytes
//!   unused is marked like the others, and its used blobs are copied (as stored, still sealed)
//!   into new packs with an index object of their own; the old pack is then replaceable, and a
//!   prune after the grace period deletes it. A pack whose bytes do not match its id is not
//!   copied: the prune stops and names it.
//!
//! Crash-safe by order: the mark is written before anything else; then the new packs and
//! their index; then one new index for the packs that stay, the index objects it replaces,
//! the packs, and the marks that are done. An interruption leaves at worst unused packs,
//! duplicate blobs or index entries, or stale marks, which the next prune cleans.
//!
//! The session markers of backups that started more than `grace` ago are removed: such a
//! backup was killed (backups finish within `grace`), and its unindexed packs are collected
//! like any unused pack instead of being adopted by the next backup.

use crate::crypto::ChunkId;
use crate::index::{Index, IndexedPack, pack_id_of, pack_key, parse_id};
use crate::pack::{BlobLocation, PackBuilder, verify_id};
use crate::repository::{Repository, RepositoryError};
use crate::sealed::{MAX_SMALL_OBJECT, Opened};
use crate::stream::PACK_TARGET;
use backup_core::ObjectStorageExt;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

/// Packs with at least this percentage of unused bytes are repacked unless told otherwise.
pub const DEFAULT_REPACK_UNUSED: u8 = 20;

/// How a prune runs.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Packs younger than this are not touched, and marks are due this long after.
    pub grace: Duration,
    /// The time the prune runs at.
    pub now: DateTime<Utc>,
    /// Partly used packs with at least this percentage of their bytes unused are repacked
    /// (100: none).
    pub repack_unused: u8,
}

impl PruneOptions {
    /// A prune at `now` with `grace`, repacking at [`DEFAULT_REPACK_UNUSED`].
    pub fn new(grace: Duration, now: DateTime<Utc>) -> Self {
        Self {
            grace,
            now,
            repack_unused: DEFAULT_REPACK_UNUSED,
        }
    }
}

/// What a prune did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    /// Packs deleted (replaceable, and marked at least the grace period ago).
    pub packs_deleted: usize,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Packs marked now (unused or repacked): a prune after the grace period deletes them.
    pub packs_marked: usize,
    /// Packs marked earlier, not due yet.
    pub packs_awaiting: usize,
    /// Partly used packs whose used blobs were copied into new packs.
    pub packs_repacked: usize,
    /// Bytes copied by the repacking.
    pub bytes_repacked: u64,
    /// Packs kept whole though partly used (less unused than the repack threshold).
    pub packs_partly_used: usize,
    /// Unused packs spared because they are younger than the grace period.
    pub packs_too_recent: usize,
    /// Index objects replaced by one.
    pub index_objects_replaced: usize,
    /// Markers of backups started more than the grace period ago (killed ones: their
    /// unindexed packs are then unused packs like any other), removed.
    pub session_markers_removed: usize,
}

/// What a prune will do, planned from one reading of the repository: shown (its report),
/// confirmed, then executed as it is ([`Repository::execute_prune`]), without reading the
/// repository again.
#[derive(Debug)]
pub struct PrunePlan {
    /// What it will do, in numbers.
    pub report: PruneReport,
    now: DateTime<Utc>,
    /// Packs to delete (marked at least the grace period ago, still replaceable).
    delete: Vec<String>,
    /// Packs to mark now.
    to_mark: BTreeSet<String>,
    /// Used blobs copied out of the packs repacked.
    copies: Vec<(String, Vec<BlobLocation>)>,
    /// The packs the one new index lists (when packs are deleted).
    keep: Vec<IndexedPack>,
    /// The index objects that new index replaces.
    index_objects: Vec<String>,
    /// Marks that are done.
    done_marks: Vec<String>,
    /// Markers of backups started more than the grace period ago.
    stale_sessions: Vec<String>,
}

/// A `pending/` object: packs found replaceable at `time`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Mark {
    time: DateTime<Utc>,
    pub(crate) packs: BTreeSet<String>,
}

/// The packs, as a prune sees them.
struct Survey {
    /// The index objects read.
    index_objects: Vec<String>,
    /// Every indexed pack.
    packs: BTreeMap<String, IndexedPack>,
    /// The packs listing each blob.
    holders: HashMap<ChunkId, Vec<String>>,
    /// Blobs some snapshot uses.
    used: HashSet<ChunkId>,
    /// Stored packs: size and time written.
    stored: BTreeMap<String, (u64, Option<DateTime<Utc>>)>,
}

impl Survey {
    /// Whether every used blob of `pack` is in another stored pack outside `going`.
    fn replaceable(&self, pack: &IndexedPack, going: &BTreeSet<String>) -> bool {
        pack.blobs
            .iter()
            .filter(|b| self.used.contains(&b.id))
            .all(|b| self.held_elsewhere(&b.id, &pack.id, going))
    }

    /// Whether the pack `id` may go while the packs in `going` go too: in no index, or
    /// replaceable.
    fn may_go(&self, id: &str, going: &BTreeSet<String>) -> bool {
        self.packs
            .get(id)
            .is_none_or(|pack| self.replaceable(pack, going))
    }

    fn held_elsewhere(&self, blob: &ChunkId, pack: &str, going: &BTreeSet<String>) -> bool {
        self.holders[blob]
            .iter()
            .any(|other| other != pack && !going.contains(other) && self.stored.contains_key(other))
    }

    /// Stored bytes of `pack`'s blobs no snapshot uses, and of all its blobs.
    fn unused_bytes(&self, pack: &IndexedPack) -> (u64, u64) {
        pack.blobs.iter().fold((0, 0), |(unused, all), b| {
            let length = u64::from(b.length);
            match self.used.contains(&b.id) {
                true => (unused, all + length),
                false => (unused + length, all + length),
            }
        })
    }
}

impl Repository {
    /// Plans and executes a prune at once (for callers that show nothing in between).
    pub async fn prune(&self, options: &PruneOptions) -> Result<PruneReport, RepositoryError> {
        let plan = self.plan_prune(options).await?;
        self.execute_prune(plan).await
    }

    /// Plans a prune, changing nothing: the replaceable packs older than the grace period
    /// and the partly used ones worth repacking are to be marked (the latter repacked), and
    /// those marked at least the grace period ago that are still replaceable deleted.
    pub async fn plan_prune(&self, options: &PruneOptions) -> Result<PrunePlan, RepositoryError> {
        let survey = self.survey().await?;
        let cutoff = options.now - chrono::Duration::from_std(options.grace).unwrap_or_default();
        let old_enough = |id: &str| {
            survey
                .stored
                .get(id)
                .and_then(|(_, modified)| *modified)
                .is_some_and(|m| m < cutoff)
        };
        let mut report = PruneReport::default();

        let marks = self.read_marks().await?.all()?;
        let marked: BTreeSet<String> = marks.iter().flat_map(|(_, m)| m.packs.clone()).collect();
        let due: BTreeSet<&String> = marks
            .iter()
            .filter(|(_, mark)| mark.time <= cutoff)
            .flat_map(|(_, mark)| &mark.packs)
            .collect();
        // Due packs that may go: stored, and in no index or replaceable by packs that stay.
        let delete: Vec<String> = due
            .iter()
            .filter(|id| survey.stored.contains_key(**id) && survey.may_go(id, &marked))
            .map(|id| (*id).clone())
            .collect();
        report.packs_awaiting = marked.len() - due.len();

        // New candidates among the stored packs, one at a time: each may count on the packs
        // not chosen before it. (A pack in no index was left by a backup killed before it
        // wrote its index.)
        let mut going = marked.clone();
        let mut to_mark = BTreeSet::new();
        for id in survey.stored.keys() {
            if going.contains(id) || !survey.may_go(id, &going) {
                continue;
            }
            match old_enough(id) {
                true => {
                    going.insert(id.clone());
                    to_mark.insert(id.clone());
                }
                false => report.packs_too_recent += 1,
            }
        }
        // Partly used packs worth repacking.
        let mut repack = Vec::new();
        for (id, pack) in &survey.packs {
            if going.contains(id) || !survey.stored.contains_key(id) {
                continue;
            }
            let (unused, all) = survey.unused_bytes(pack);
            if unused == 0 {
                continue;
            }
            if old_enough(id) && unused * 100 >= all * u64::from(options.repack_unused) {
                repack.push(id.clone());
            } else {
                report.packs_partly_used += 1;
            }
        }
        going.extend(repack.iter().cloned());
        to_mark.extend(repack.iter().cloned());
        let copies = repack_plan(&survey, &repack, &going);

        report.packs_deleted = delete.len();
        report.bytes_freed = delete
            .iter()
            .filter_map(|id| survey.stored.get(id))
            .map(|(size, _)| size)
            .sum();
        report.packs_marked = to_mark.len();
        report.packs_repacked = repack.len();
        report.bytes_repacked = copies
            .iter()
            .flat_map(|(_, blobs)| blobs)
            .map(|b| u64::from(b.length))
            .sum();
        let stale_sessions: Vec<String> = self
            .storage()
            .list_all("sessions/")
            .await?
            .into_iter()
            .filter(|o| o.last_modified.is_some_and(|m| m < cutoff))
            .map(|o| o.key)
            .collect();
        report.session_markers_removed = stale_sessions.len();
        let gone: HashSet<&String> = delete.iter().collect();
        let keep: Vec<IndexedPack> = match delete.is_empty() {
            true => Vec::new(),
            false => survey
                .packs
                .into_values()
                .filter(|p| !gone.contains(&p.id))
                .collect(),
        };
        let done_marks = marks
            .iter()
            .filter(|(_, mark)| mark.time <= cutoff)
            .map(|(key, _)| key.clone())
            .collect();
        Ok(PrunePlan {
            report,
            now: options.now,
            delete,
            to_mark,
            copies,
            keep,
            index_objects: survey.index_objects,
            done_marks,
            stale_sessions,
        })
    }

    /// Executes a planned prune as it was planned; returns its report.
    pub async fn execute_prune(&self, plan: PrunePlan) -> Result<PruneReport, RepositoryError> {
        let PrunePlan {
            mut report,
            now,
            delete,
            to_mark,
            copies,
            keep,
            index_objects,
            done_marks,
            stale_sessions,
        } = plan;
        if !to_mark.is_empty() {
            self.write_mark(&Mark {
                time: now,
                packs: to_mark,
            })
            .await?;
        }
        self.copy_blobs(&copies).await?;
        if !delete.is_empty() {
            // One index for what stays, then the index objects it replaces, then the packs.
            let keep: Vec<&IndexedPack> = keep.iter().collect();
            let name = self.write_index_object(&keep).await?;
            for key in index_objects.iter().filter(|key| **key != name) {
                self.storage().delete(key).await?;
                report.index_objects_replaced += 1;
            }
            for id in &delete {
                self.storage().delete(&pack_key(id)).await?;
            }
        }
        // The marks that are done (their packs deleted, or needed again).
        for key in &done_marks {
            self.storage().delete(key).await?;
        }
        self.end_sessions(&stale_sessions).await?;
        Ok(report)
    }

    /// Reads every index object and every snapshot: which blobs are used and where they are.
    async fn survey(&self) -> Result<Survey, RepositoryError> {
        let (index_objects, files): (Vec<String>, Vec<_>) =
            self.index_files().await?.all()?.into_iter().unzip();
        let mut packs: BTreeMap<String, IndexedPack> = BTreeMap::new();
        let mut holders: HashMap<ChunkId, Vec<String>> = HashMap::new();
        let mut index = Index::default();
        for pack in files.into_iter().flat_map(|f| f.packs) {
            if packs.contains_key(&pack.id) {
                continue;
            }
            index.add_pack(&pack);
            for blob in &pack.blobs {
                holders.entry(blob.id).or_default().push(pack.id.clone());
            }
            packs.insert(pack.id.clone(), pack);
        }
        // A listing that cannot be read stops the prune before anything is marked or deleted.
        let mut used = HashSet::new();
        for snapshot in self.all_snapshots().await? {
            for chunk in self.snapshot_chunks(&index, &snapshot).await? {
                used.insert(parse_id(&chunk)?);
            }
        }
        let stored = self
            .storage()
            .list_all("data/")
            .await?
            .into_iter()
            .filter_map(|o| {
                let id = pack_id_of(&o.key)?.to_owned();
                Some((id, (o.size, o.last_modified)))
            })
            .collect();
        Ok(Survey {
            index_objects,
            packs,
            holders,
            used,
            stored,
        })
    }

    /// Copies blobs, as stored, out of the packs named into new packs, and indexes those.
    async fn copy_blobs(
        &self,
        copies: &[(String, Vec<BlobLocation>)],
    ) -> Result<(), RepositoryError> {
        let mut written = Vec::new();
        let mut builder = PackBuilder::default();
        for (id, blobs) in copies {
            let key = pack_key(id);
            let bytes = self.storage().get_bytes(&key).await?;
            if !verify_id(id, &bytes) {
                return Err(RepositoryError::Corrupt(format!(
                    "{key}: content does not match its id (damaged); not repacked, nothing \
                     deleted (see `kbackup repo check --read-data`)"
                )));
            }
            for blob in blobs {
                builder.add(blob.id, &bytes[blob.range()], blob.plain_length as usize);
                if builder.len() >= PACK_TARGET {
                    written.push(self.store_pack(std::mem::take(&mut builder)).await?.0);
                }
            }
        }
        if !builder.is_empty() {
            written.push(self.store_pack(builder).await?.0);
        }
        if !written.is_empty() {
            self.write_index_object(&written).await?;
        }
        Ok(())
    }

    /// Every prune mark, opened.
    pub(crate) async fn read_marks(&self) -> Result<Opened<Mark>, RepositoryError> {
        self.open_all("pending/", MAX_SMALL_OBJECT).await
    }

    async fn write_mark(&self, mark: &Mark) -> Result<(), RepositoryError> {
        let plain = serde_json::to_vec(mark).expect("a mark serializes");
        let name = format!("pending/{}", blake3::hash(&plain).to_hex());
        let sealed = self.key().seal(&plain, name.as_bytes())?;
        self.storage().put_bytes(&name, Bytes::from(sealed)).await?;
        Ok(())
    }
}

/// For each pack to repack, the used blobs no pack that stays holds (each blob once).
fn repack_plan(
    survey: &Survey,
    repack: &[String],
    going: &BTreeSet<String>,
) -> Vec<(String, Vec<BlobLocation>)> {
    let mut copied = HashSet::new();
    repack
        .iter()
        .map(|id| {
            let blobs = survey.packs[id]
                .blobs
                .iter()
                .filter(|b| survey.used.contains(&b.id))
                .filter(|b| !survey.held_elsewhere(&b.id, id, going))
                .filter(|b| copied.insert(b.id))
                .copied()
                .collect();
            (id.clone(), blobs)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::tests::repository;
    use backup_core::ObjectStorageExt;
    use backup_testing::noise;

    #[tokio::test]
    async fn a_planned_prune_changes_nothing_and_runs_as_planned() {
        let repo = repository().await;
        // Stored, but no snapshot refers to it: a prune marks its pack.
        repo.backup_stream("a", noise(300_000, 1).as_slice())
            .await
            .unwrap();
        let now = Utc::now() + chrono::Duration::seconds(1);
        let options = PruneOptions::new(Duration::ZERO, now);
        let plan = repo.plan_prune(&options).await.unwrap();
        assert_eq!(plan.report.packs_marked, 1);
        let pending = || async { repo.storage().list_all("pending/").await.unwrap().len() };
        assert_eq!(pending().await, 0, "a plan writes nothing");
        // Another unused pack appears before the plan runs: it was not confirmed.
        repo.backup_stream("b", noise(300_000, 2).as_slice())
            .await
            .unwrap();
        let report = repo.execute_prune(plan).await.unwrap();
        assert_eq!(report.packs_marked, 1);
        assert_eq!(pending().await, 1);
        let next = repo.plan_prune(&options).await.unwrap();
        assert_eq!(
            next.report.packs_marked, 1,
            "the new pack waits for a plan of its own"
        );
    }
}
