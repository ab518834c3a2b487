//! `kbackup snapshot describe ID|latest`.

use crate::cli::{RepoArgs, SnapshotFilter};
use crate::context::Context;
use crate::exit::{CliResult, Exit};
use crate::output::{Tabular, emit};
use crate::repository::{find_snapshot, open};
use backup_usecases::cluster::{SnapshotContents, describe_snapshot};

impl Tabular for SnapshotContents {
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

/// Describes a snapshot: its components, a cluster snapshot's objects per kind and
/// namespace.
pub async fn describe(
    context: &Context,
    repo: &RepoArgs,
    wanted: &str,
    among: &SnapshotFilter,
) -> CliResult {
    let repository = open(context, repo).await?;
    let snapshots = repository.snapshots().await?;
    let file = find_snapshot(&snapshots, wanted, among, &repo.repo)?;
    let rows = describe_snapshot(&repository, file).await?;
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
