//! Finding the snapshot a person means: `latest`, or an id prefix, among the snapshots with
//! the tags and labels asked for.

use backup_core::Snapshot;
use backup_repository::SnapshotFile;

/// Which snapshots an id or `latest` is looked up among: those with every tag and label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotSelector {
    /// Tags a snapshot must have.
    pub tags: Vec<String>,
    /// Labels (`key`, `value`) a snapshot must have.
    pub labels: Vec<(String, String)>,
}

impl SnapshotSelector {
    /// Whether `snapshot` has every tag and label asked for.
    pub fn selects(&self, snapshot: &Snapshot) -> bool {
        snapshot.matches(&self.tags, &self.labels.iter().cloned().collect())
    }

    /// The selection in words, for messages (empty without one).
    pub fn describe(&self) -> String {
        let marks: Vec<String> = (self.tags.iter().map(|t| format!("tag {t}")))
            .chain(self.labels.iter().map(|(k, v)| format!("label {k}={v}")))
            .collect();
        match marks.is_empty() {
            true => String::new(),
            false => format!(" with {}", marks.join(", ")),
        }
    }
}

/// Why no one snapshot was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// The prefix names several snapshots.
    #[error("snapshot id prefix '{prefix}' is ambiguous ({count} snapshots)")]
    Ambiguous {
        /// The prefix.
        prefix: String,
        /// How many it names.
        count: usize,
    },
    /// No selected snapshot is `latest` or has the prefix.
    #[error("no snapshot '{wanted}'{among}")]
    NotFound {
        /// `latest` or the prefix.
        wanted: String,
        /// The selection in words.
        among: String,
    },
}

/// The snapshot `wanted` names among the selected ones of `snapshots` (sorted oldest first):
/// `latest` is the newest; anything else is an id prefix that must name exactly one.
pub fn find_snapshot<'s>(
    snapshots: &'s [SnapshotFile],
    wanted: &str,
    among: &SnapshotSelector,
) -> Result<&'s SnapshotFile, SelectionError> {
    let mut selected = snapshots.iter().filter(|s| among.selects(&s.snapshot));
    let found = match wanted {
        "latest" => selected.next_back(),
        prefix => {
            let found: Vec<_> = selected
                .filter(|s| s.snapshot.id.as_str().starts_with(prefix))
                .collect();
            if found.len() > 1 {
                return Err(SelectionError::Ambiguous {
                    prefix: prefix.into(),
                    count: found.len(),
                });
            }
            found.into_iter().next()
        }
    };
    found.ok_or_else(|| SelectionError::NotFound {
        wanted: wanted.into(),
        among: among.describe(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::SnapshotId;

    fn file(id: &str, tags: &[&str]) -> SnapshotFile {
        SnapshotFile {
            snapshot: Snapshot {
                id: SnapshotId::parse(id).unwrap(),
                time: chrono::Utc::now(),
                source: "host".into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                labels: Default::default(),
                components: vec![],
                totals: Default::default(),
            },
            streams: vec![],
            trees: vec![],
        }
    }

    #[test]
    fn latest_and_prefixes_are_found_among_the_selected_snapshots() {
        let snapshots = [
            file("aaaa0001", &["daily"]),
            file("aaaa0002", &[]),
            file("bbbb0003", &["daily"]),
        ];
        let all = SnapshotSelector::default();
        let daily = SnapshotSelector {
            tags: vec!["daily".into()],
            ..SnapshotSelector::default()
        };
        let id = |found: Result<&SnapshotFile, _>| found.unwrap().snapshot.id.short().to_owned();
        assert_eq!(id(find_snapshot(&snapshots, "latest", &all)), "bbbb0003");
        assert_eq!(id(find_snapshot(&snapshots, "aaaa", &daily)), "aaaa0001");
        assert_eq!(
            find_snapshot(&snapshots, "aaaa", &all).unwrap_err(),
            SelectionError::Ambiguous {
                prefix: "aaaa".into(),
                count: 2
            }
        );
        let missing = find_snapshot(&snapshots, "aaaa0002", &daily).unwrap_err();
        assert_eq!(missing.to_string(), "no snapshot 'aaaa0002' with tag daily");
    }
}
