//! What changed between two snapshots: stream components by content, and for cluster
//! snapshots every object by its checksum.

use super::{MANIFESTS, ManifestsError, read_manifests};
use backup_repository::{Repository, SnapshotFile};
use serde::Serialize;
use std::collections::BTreeMap;

/// One difference between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotChange {
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// The component, or `manifests: Kind namespace/name` for an object.
    pub item: String,
}

/// Each object's checksum, by name (read and verified).
async fn checksums(
    repository: &Repository,
    file: &SnapshotFile,
) -> Result<BTreeMap<String, String>, ManifestsError> {
    let mut sums = BTreeMap::new();
    read_manifests(repository, file, |r| {
        sums.insert(r.to_string(), r.checksum);
        Ok::<_, ManifestsError>(())
    })
    .await?;
    Ok(sums)
}

fn compare<V: PartialEq>(
    old: &BTreeMap<String, V>,
    new: &BTreeMap<String, V>,
    label: impl Fn(&str) -> String,
) -> Vec<SnapshotChange> {
    let change = |change, name: &str| SnapshotChange {
        change,
        item: label(name),
    };
    let mut changes = Vec::new();
    for (name, value) in new {
        match old.get(name) {
            None => changes.push(change("added", name)),
            Some(before) if before != value => changes.push(change("changed", name)),
            Some(_) => {}
        }
    }
    for name in old.keys().filter(|n| !new.contains_key(*n)) {
        changes.push(change("removed", name));
    }
    changes
}

/// The differences from snapshot `a` to snapshot `b`; the manifests of cluster snapshots
/// are read back (and verified) object by object.
pub async fn diff_snapshots(
    repository: &Repository,
    a: &SnapshotFile,
    b: &SnapshotFile,
) -> Result<Vec<SnapshotChange>, ManifestsError> {
    let streams = |f: &SnapshotFile| -> BTreeMap<String, Vec<String>> {
        f.streams
            .iter()
            .filter(|s| s.name != MANIFESTS)
            .map(|s| (s.name.clone(), s.chunks.clone()))
            .collect()
    };
    let mut changes = compare(&streams(a), &streams(b), |n| n.to_owned());
    let has_manifests = |f: &SnapshotFile| f.streams.iter().any(|s| s.name == MANIFESTS);
    let whole = |change| SnapshotChange {
        change,
        item: MANIFESTS.into(),
    };
    match (has_manifests(a), has_manifests(b)) {
        (true, true) => {
            let (old, new) = (
                checksums(repository, a).await?,
                checksums(repository, b).await?,
            );
            changes.extend(compare(&old, &new, |n| format!("{MANIFESTS}: {n}")));
        }
        (false, true) => changes.push(whole("added")),
        (true, false) => changes.push(whole("removed")),
        (false, false) => {}
    }
    Ok(changes)
}
