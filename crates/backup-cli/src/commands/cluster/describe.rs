//! `kbackup snapshot describe ID|latest`.

use crate::cli::{RepoArgs, SnapshotFilter};
use crate::commands::repo::{find_snapshot, open};
use crate::context::Context;
use crate::exit::{CliResult, Exit};
use crate::output::{Tabular, emit};
use backup_core::resources::kind_name;
use backup_usecases::cluster::{MANIFESTS, ManifestsError, read_manifests};
use serde::Serialize;
use std::collections::BTreeMap;

/// One line of a description: a component, or a count of objects of one kind in one
/// namespace of a cluster snapshot.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescribeRow {
    component: String,
    phase: String,
    kind: String,
    namespace: String,
    objects: u64,
}

impl Tabular for DescribeRow {
    fn headers() -> Vec<&'static str> {
        vec!["COMPONENT", "PHASE", "KIND", "NAMESPACE", "OBJECTS"]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.component.clone(),
            self.phase.clone(),
            self.kind.clone(),
            self.namespace.clone(),
            self.objects.to_string(),
        ]
    }
}

/// Describes a snapshot; a cluster snapshot's manifests are read (and verified) to count
/// its objects per kind and namespace.
pub async fn describe(
    context: &Context,
    repo: &RepoArgs,
    wanted: &str,
    among: &SnapshotFilter,
) -> CliResult {
    let repository = open(context, repo).await?;
    let snapshots = repository.snapshots().await?;
    let file = find_snapshot(&snapshots, wanted, among, &repo.repo)?;
    let mut rows = Vec::new();
    for component in &file.snapshot.components {
        let phase = format!("{:?}", component.phase);
        if component.name == MANIFESTS {
            let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
            read_manifests(&repository, file, |r| {
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
                    .map(|((kind, namespace), objects)| DescribeRow {
                        component: component.name.clone(),
                        phase: phase.clone(),
                        kind,
                        namespace,
                        objects,
                    }),
            );
        } else {
            rows.push(DescribeRow {
                component: component.name.clone(),
                phase,
                kind: component.engine.clone(),
                namespace: "-".into(),
                objects: 1,
            });
        }
    }
    context.info(&format!(
        "snapshot {} taken {} on {} ({:?}, tags: {})",
        file.snapshot.id,
        file.snapshot
            .time
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        file.snapshot.source,
        file.snapshot.phase(),
        file.snapshot
            .tags
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(",")
    ));
    emit(context.output, &rows)?;
    Ok(Exit::Success)
}
