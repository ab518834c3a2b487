//! `kbackup snapshot diff A B`: what changed between two snapshots.

use crate::cli::{RepoArgs, SnapshotFilter};
use crate::commands::repo::{find_snapshot, open};
use crate::context::Context;
use crate::exit::{CliResult, Exit};
use crate::output::{Tabular, emit};
use backup_repository::{Repository, SnapshotFile};
use backup_usecases::cluster::{MANIFESTS, ManifestsError, read_manifests};
use serde::Serialize;
use std::collections::BTreeMap;

/// One difference.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Change {
    /// `added`, `removed` or `changed`.
    change: &'static str,
    /// The component, or `manifests: Kind namespace/name` for an object.
    item: String,
}

impl Tabular for Change {
    fn headers() -> Vec<&'static str> {
        vec!["CHANGE", "ITEM"]
    }
    fn cells(&self) -> Vec<String> {
        vec![self.change.into(), self.item.clone()]
    }
}

/// Each object's checksum, by name (read and verified).
async fn checksums(
    repository: &Repository,
    file: &SnapshotFile,
) -> Result<BTreeMap<String, String>, crate::exit::CliError> {
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
) -> Vec<Change> {
    let mut changes = Vec::new();
    for (name, value) in new {
        match old.get(name) {
            None => changes.push(Change {
                change: "added",
                item: label(name),
            }),
            Some(before) if before != value => changes.push(Change {
                change: "changed",
                item: label(name),
            }),
            Some(_) => {}
        }
    }
    for name in old.keys().filter(|n| !new.contains_key(*n)) {
        changes.push(Change {
            change: "removed",
            item: label(name),
        });
    }
    changes
}

/// Compares two snapshots: stream components by content, and for cluster snapshots every
/// object by its checksum.
pub async fn diff(context: &Context, repo: &RepoArgs, first: &str, second: &str) -> CliResult {
    let repository = open(context, repo).await?;
    let snapshots = repository.snapshots().await?;
    let (a, b) = (
        find_snapshot(&snapshots, first, &SnapshotFilter::default(), &repo.repo)?,
        find_snapshot(&snapshots, second, &SnapshotFilter::default(), &repo.repo)?,
    );
    let streams = |f: &SnapshotFile| -> BTreeMap<String, Vec<String>> {
        f.streams
            .iter()
            .filter(|s| s.name != MANIFESTS)
            .map(|s| (s.name.clone(), s.chunks.clone()))
            .collect()
    };
    let mut changes = compare(&streams(a), &streams(b), |n| n.to_owned());
    let has_manifests = |f: &SnapshotFile| f.streams.iter().any(|s| s.name == MANIFESTS);
    match (has_manifests(a), has_manifests(b)) {
        (true, true) => {
            let (old, new) = (
                checksums(&repository, a).await?,
                checksums(&repository, b).await?,
            );
            changes.extend(compare(&old, &new, |n| format!("{MANIFESTS}: {n}")));
        }
        (false, true) => changes.push(Change {
            change: "added",
            item: MANIFESTS.into(),
        }),
        (true, false) => changes.push(Change {
            change: "removed",
            item: MANIFESTS.into(),
        }),
        (false, false) => {}
    }
    emit(context.output, &changes)?;
    context.info(&format!(
        "{} difference(s) from {} to {}",
        changes.len(),
        a.snapshot.id.short(),
        b.snapshot.id.short()
    ));
    Ok(Exit::Success)
}
