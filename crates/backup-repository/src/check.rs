//! `check`: every snapshot opens and references only indexed chunks, every indexed pack
//! exists; with `read_data`, every pack's bytes match its id, its header opens, and every
//! blob decodes and matches its id. Problems are collected, naming the object, not stopped at.

use crate::index::{Index, pack_id_of, pack_key};
use crate::pack::{read_header, verify_blob, verify_id};
use crate::repository::{Repository, RepositoryError};
use backup_core::ObjectStorageExt;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What `check` looked at and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// Snapshots read.
    pub snapshots: usize,
    /// Packs in the index.
    pub packs: usize,
    /// Blobs in the index.
    pub blobs: usize,
    /// Packs whose data was read and verified.
    pub packs_read: usize,
    /// Problems, each naming an object.
    pub errors: Vec<String>,
    /// Objects the repository did not write (stray names), each named: not damage, but
    /// someone else writes to this location.
    pub warnings: Vec<String>,
}

impl Repository {
    /// Checks the repository; see the module documentation. `read_percent` of the packs
    /// (0 to 100) are read and verified byte by byte: a random subset that changes from run
    /// to run (so repeated partial checks cover everything), at least one pack when above 0.
    pub async fn check(&self, read_percent: u8) -> Result<CheckReport, RepositoryError> {
        let mut report = CheckReport::default();
        let files = self.index_files().await?;
        report.errors.extend(files.unreadable.iter().cloned());
        let index = Index::of(&files.objects);
        let mut packs: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for (pack, location) in index.entries() {
            packs.entry(pack.to_owned()).or_default().push(location);
        }
        report.packs = packs.len();
        report.blobs = index.len();

        let snapshots = self.snapshot_files().await?;
        report.errors.extend(snapshots.unreadable.iter().cloned());
        for (key, file) in &snapshots.objects {
            report.snapshots += 1;
            let chunks = match self.snapshot_chunks(&index, file).await {
                Ok(chunks) => chunks,
                Err(error) => {
                    report.errors.push(format!("{key}: {error}"));
                    continue;
                }
            };
            let missing: BTreeSet<&String> =
                chunks.iter().filter(|c| !index.contains_hex(c)).collect();
            if let Some(first) = missing.iter().next() {
                report.errors.push(format!(
                    "{key}: {} chunk(s) in no indexed pack, e.g. {first}",
                    missing.len()
                ));
            }
        }
        report.warnings = self.strays().await?;

        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| RepositoryError::Corrupt(format!("no randomness: {e}")))?;
        let to_read = subset(packs.keys(), read_percent, &seed);
        for (pack, blobs) in &packs {
            let key = pack_key(pack);
            if !to_read.contains(pack) {
                if !self.storage().exists(&key).await? {
                    report.errors.push(format!("{key}: missing"));
                }
                continue;
            }
            let bytes = match self.storage().get_bytes(&key).await {
                Ok(bytes) => bytes,
                Err(e) if e.is_not_found() => {
                    report.errors.push(format!("{key}: missing"));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            report.packs_read += 1;
            if !verify_id(pack, &bytes) {
                report
                    .errors
                    .push(format!("{key}: content does not match its id (damaged)"));
            }
            if let Err(error) = read_header(self.key(), pack, &bytes) {
                report.errors.push(format!("{key}: {error}"));
            }
            for location in blobs {
                if let Err(error) = verify_blob(self.key(), &bytes, location) {
                    report.errors.push(format!("{key}: {error}"));
                }
            }
        }
        Ok(report)
    }
}

impl Repository {
    /// Objects whose names the repository never writes: under `data/` anything but a pack
    /// key; under the other prefixes anything but a hex name.
    async fn strays(&self) -> Result<Vec<String>, RepositoryError> {
        let mut strays = Vec::new();
        for object in self.storage().list_all("data/").await? {
            if pack_id_of(&object.key).is_none() {
                strays.push(format!("{}: not a pack's name (stray object)", object.key));
            }
        }
        for prefix in ["index/", "snapshots/", "pending/", "sessions/", "keys/"] {
            for object in self.storage().list_all(prefix).await? {
                let name = &object.key[prefix.len()..];
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                    strays.push(format!(
                        "{}: not a name the repository writes (stray object)",
                        object.key
                    ));
                }
            }
        }
        Ok(strays)
    }
}

/// The packs a check reads: `percent` of them, by a keyed hash with a fresh key per run, at
/// least one when `percent` is above 0.
fn subset<'p>(
    packs: impl Iterator<Item = &'p String>,
    percent: u8,
    seed: &[u8; 32],
) -> BTreeSet<&'p String> {
    let score = |pack: &str| {
        let hash = blake3::keyed_hash(seed, pack.as_bytes());
        u16::from_le_bytes([hash.as_bytes()[0], hash.as_bytes()[1]])
    };
    let all: Vec<&String> = packs.collect();
    let threshold = u32::from(percent.min(100)) * u32::from(u16::MAX) / 100;
    let mut chosen: BTreeSet<&String> = all
        .iter()
        .copied()
        .filter(|p| percent >= 100 || u32::from(score(p)) < threshold)
        .collect();
    if chosen.is_empty() && percent > 0 {
        chosen.extend(all.iter().copied().min_by_key(|p| score(p)));
    }
    chosen
}

#[cfg(test)]
mod tests {
    use crate::stream::tests::{damage_first_pack, repository, snapshot};
    use backup_core::ObjectStorageExt;
    use backup_testing::noise;
    use bytes::Bytes;

    #[tokio::test]
    async fn a_healthy_repository_checks_clean_and_damage_is_named() {
        let repo = repository().await;
        let (content, _) = repo
            .backup_stream("dump", noise(700_000, 9).as_slice())
            .await
            .unwrap();
        repo.write_snapshot(snapshot(vec![content])).await.unwrap();
        let clean = repo.check(100).await.unwrap();
        assert!(clean.errors.is_empty(), "{:?}", clean.errors);
        assert_eq!((clean.snapshots, clean.packs, clean.packs_read), (1, 1, 1));
        assert!(clean.blobs > 1);

        let key = damage_first_pack(&repo, 10).await;
        assert!(
            repo.check(0).await.unwrap().errors.is_empty(),
            "a structural check does not read data"
        );
        let damaged = repo.check(100).await.unwrap();
        assert!(
            damaged
                .errors
                .iter()
                .any(|e| e.contains(&key) && e.contains("does not match its id")),
            "{:?}",
            damaged.errors
        );
        assert!(
            damaged
                .errors
                .iter()
                .any(|e| e.contains("integrity check failed")),
            "{:?}",
            damaged.errors
        );

        repo.storage().delete(&key).await.unwrap();
        let missing = repo.check(0).await.unwrap();
        assert_eq!(missing.errors, vec![format!("{}: missing", key)]);
    }

    #[tokio::test]
    async fn a_damaged_snapshot_is_named() {
        let repo = repository().await;
        let (content, _) = repo
            .backup_stream("dump", noise(100_000, 4).as_slice())
            .await
            .unwrap();
        let id = repo.write_snapshot(snapshot(vec![content])).await.unwrap();
        let name = format!("snapshots/{id}");
        let mut bytes = repo.storage().get_bytes(&name).await.unwrap().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        repo.storage()
            .put_bytes(&name, Bytes::from(bytes))
            .await
            .unwrap();
        let report = repo.check(0).await.unwrap();
        assert!(
            report.errors.iter().any(|e| e.starts_with(&name)),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn a_subset_reads_about_its_share_and_never_nothing() {
        let packs: Vec<String> = (0..1000).map(|i| format!("{i:064x}")).collect();
        let seed = [7u8; 32];
        let tenth = super::subset(packs.iter(), 10, &seed).len();
        assert!((60..=140).contains(&tenth), "{tenth} of 1000 for 10%");
        assert_eq!(super::subset(packs.iter(), 100, &seed).len(), 1000);
        assert!(super::subset(packs.iter(), 0, &seed).is_empty());
        assert_eq!(
            super::subset(packs[..3].iter(), 1, &seed).len(),
            1,
            "at least one"
        );
        let other = super::subset(packs.iter(), 10, &[8u8; 32]);
        assert_ne!(
            super::subset(packs.iter(), 10, &seed),
            other,
            "another run, another subset"
        );
    }
}
