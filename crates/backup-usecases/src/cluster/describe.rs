//! What a snapshot holds: its components, and for a cluster snapshot its objects counted
//! per kind and namespace.

use super::{MANIFESTS, ManifestsError, read_manifests};
use backup_core::resources::kind_name;
use backup_repository::{Repository, SnapshotFile};
use serde::Serialize;
use std::collections::BTreeMap;

/// One line of a description: a component, or a count of objects of one kind in one
/// namespace of a cluster snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotContents {
    /// The component.
    pub component: String,
    /// Its phase.
    pub phase: String,
    /// The kind of the objects, or the component's engine.
    pub kind: String,
    /// Their namespace (`-`: cluster-scoped, or not an object).
    pub namespace: String,
    /// How many.
    pub objects: u64,
}

/// Describes a snapshot; a cluster snapshot's manifests are read (and verified) to count
/// its objects per kind and namespace.
pub async fn describe_snapshot(
    repository: &Repository,
    file: &SnapshotFile,
) -> Result<Vec<SnapshotContents>, ManifestsError> {
    let mut rows = Vec::new();
    for component in &file.snapshot.components {
        let phase = format!("{:?}", component.phase);
        if component.name != MANIFESTS {
            rows.push(SnapshotContents {
                component: component.name.clone(),
                phase,
                kind: component.engine.clone(),
                namespace: "-".into(),
                objects: 1,
            });
            continue;
        }
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        read_manifests(repository, file, |r| {
            let kind = kind_name(&r.group, &r.kind);
            *counts
                .entry((kind, r.namespace.unwrap_or_else(|| "-".into())))
                .or_default() += 1;
            Ok::<_, ManifestsError>(())
        })
        .await?;
        rows.extend(
            counts
                .into_iter()
                .map(|((kind, namespace), objects)| SnapshotContents {
                    component: component.name.clone(),
                    phase: phase.clone(),
                    kind,
                    namespace,
                    objects,
                }),
        );
    }
    Ok(rows)
}
