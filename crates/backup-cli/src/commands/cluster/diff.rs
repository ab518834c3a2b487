//! `kbackup snapshot diff A B`: what changed between two snapshots.

use crate::cli::{RepoArgs, SnapshotFilter};
use crate::context::Context;
use crate::exit::{CliResult, Exit};
use crate::output::{Tabular, emit};
use crate::repository::{find_snapshot, open};
use backup_usecases::cluster::{SnapshotChange, diff_snapshots};

impl Tabular for SnapshotChange {
    fn headers() -> Vec<&'static str> {
        vec!["CHANGE", "ITEM"]
    }
    fn cells(&self) -> Vec<String> {
        vec![self.change.into(), self.item.clone()]
    }
}

/// Compares two snapshots.
pub async fn diff(context: &Context, repo: &RepoArgs, first: &str, second: &str) -> CliResult {
    let repository = open(context, repo).await?;
    let snapshots = repository.snapshots().await?;
    let (a, b) = (
        find_snapshot(&snapshots, first, &SnapshotFilter::default(), &repo.repo)?,
        find_snapshot(&snapshots, second, &SnapshotFilter::default(), &repo.repo)?,
    );
    let changes = diff_snapshots(&repository, a, b).await?;
    emit(context.output, &changes)?;
    context.info(&format!(
        "{} difference(s) from {} to {}",
        changes.len(),
        a.snapshot.id.short(),
        b.snapshot.id.short()
    ));
    Ok(Exit::Success)
}
