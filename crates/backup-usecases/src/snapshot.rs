//! New snapshots: what every backup records about itself.

use backup_core::model::Phase;
use backup_core::{Component, Snapshot, SnapshotId, Totals};
use backup_repository::{Repository, RepositoryError, SnapshotFile, StreamContent};
use std::collections::BTreeMap;

/// The user's tags and labels for a new snapshot (`latest --label key=value` finds it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotMarks {
    /// Tags.
    pub tags: Vec<String>,
    /// Labels, `key=value`.
    pub labels: Vec<(String, String)>,
}

/// A snapshot of this machine taken now, ready for `write_snapshot` (which sets its id):
/// the user's tags and labels, and kbackup's own `kbackup.io/` labels.
pub fn new_snapshot(
    marks: SnapshotMarks,
    own_labels: BTreeMap<String, String>,
    components: Vec<Component>,
    totals: Totals,
) -> Snapshot {
    Snapshot {
        id: SnapshotId::parse("00000000").expect("placeholder id, replaced when written"),
        time: chrono::Utc::now(),
        source: hostname(),
        tags: marks.tags.into_iter().collect(),
        labels: marks.labels.into_iter().chain(own_labels).collect(),
        components,
        totals,
    }
}

/// This machine's name, recorded as a snapshot's source.
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Commits a snapshot of one stored stream: its component, the totals, the user's marks and
/// kbackup's own labels. Returns the snapshot's id and phase.
pub async fn commit_stream(
    repository: &Repository,
    marks: SnapshotMarks,
    own_labels: BTreeMap<String, String>,
    component: Component,
    content: StreamContent,
    totals: Totals,
) -> Result<(SnapshotId, Phase), RepositoryError> {
    let snapshot = new_snapshot(marks, own_labels, vec![component], totals);
    let phase = snapshot.phase();
    let id = repository
        .write_snapshot(SnapshotFile {
            snapshot,
            streams: vec![content],
            trees: vec![],
        })
        .await?;
    Ok((id, phase))
}
