//! `kbackup snapshot list|delete|cat`.

use crate::cli::{RepoArgs, SnapshotFilter};
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use crate::repository::{find_snapshot, open};
use anyhow::anyhow;
use backup_usecases::selection::SnapshotSelector;
use indicatif::HumanBytes;
use serde::Serialize;
use tokio_util::compat::TokioAsyncWriteCompatExt;

/// A snapshot as listed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotRow {
    id: String,
    time: String,
    source: String,
    components: Vec<String>,
    size: u64,
    tags: Vec<String>,
    labels: std::collections::BTreeMap<String, String>,
}

impl Tabular for SnapshotRow {
    fn headers() -> Vec<&'static str> {
        vec![
            "ID",
            "TIME",
            "SOURCE",
            "COMPONENTS",
            "SIZE",
            "TAGS",
            "LABELS",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.id[..8].to_owned(),
            self.time.clone(),
            self.source.clone(),
            self.components.join(","),
            HumanBytes(self.size).to_string(),
            self.tags.join(","),
            (self.labels.iter())
                .filter(|(key, _)| !key.starts_with("kbackup.io/"))
                .map(|(key, value)| format!("{key}={value}"))
                .collect::<Vec<_>>()
                .join(","),
        ]
    }
}

/// Lists the snapshots `among` selects, oldest first.
pub async fn list(context: &Context, repo: &RepoArgs, among: &SnapshotFilter) -> CliResult {
    let repository = open(context, repo).await?;
    let selector = SnapshotSelector::from(among);
    let rows: Vec<SnapshotRow> = repository
        .snapshots()
        .await?
        .into_iter()
        .filter(|file| selector.selects(&file.snapshot))
        .map(|file| SnapshotRow {
            id: file.snapshot.id.to_string(),
            time: file
                .snapshot
                .time
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            source: file.snapshot.source.clone(),
            components: file
                .snapshot
                .components
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            size: file.snapshot.totals.bytes,
            tags: file.snapshot.tags.iter().cloned().collect(),
            labels: file.snapshot.labels.clone(),
        })
        .collect();
    emit(context.output, &rows)?;
    Ok(Exit::Success)
}

/// Deletes one snapshot (its data stays until a prune).
pub async fn delete(
    context: &Context,
    repo: &RepoArgs,
    snapshot: &str,
    among: &SnapshotFilter,
) -> CliResult {
    let repository = open(context, repo).await?;
    let snapshots = repository.snapshots().await?;
    let id = find_snapshot(&snapshots, snapshot, among, &repo.repo)?
        .snapshot
        .id
        .clone();
    context.confirm(&format!("Delete snapshot {id} from {}?", repo.repo))?;
    repository.delete_snapshot(&id).await?;
    context.info(&format!(
        "deleted snapshot {}; its data is freed by a later prune",
        id.short()
    ));
    Ok(Exit::Success)
}

/// Writes a stream component to standard output.
pub async fn cat(
    context: &Context,
    repo: &RepoArgs,
    target: &str,
    among: &SnapshotFilter,
) -> CliResult {
    let (wanted, component) = target.rsplit_once(':').ok_or_else(|| {
        CliError::user(anyhow!(
            "expected ID:COMPONENT (ID may be `latest`), got '{target}'"
        ))
    })?;
    let repository = open(context, repo).await?;
    let snapshots = repository.snapshots().await?;
    let file = find_snapshot(&snapshots, wanted, among, &repo.repo)?;
    let content = file
        .streams
        .iter()
        .find(|s| s.name == component)
        .ok_or_else(|| {
            CliError::user(anyhow!(
                "snapshot {} has no stream component '{component}'",
                file.snapshot.id.short()
            ))
        })?;
    let index = repository.load_index().await?;
    repository
        .restore_stream(&index, content, tokio::io::stdout().compat_write())
        .await?;
    Ok(Exit::Success)
}
