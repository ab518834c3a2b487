//! `kbackup backup path` and `kbackup restore path`: directory trees in the repository.

use super::{find_snapshot, note_adopted, open};
use crate::cli::{BackupCommand, RestoreCommand};
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use anyhow::anyhow;
use backup_core::{Component, Phase, Progress, Totals};
use backup_repository::tree::{
    Node, NodeKind, PathPatterns, RawPath, RestoreTarget, TREE_ENGINE, TreeBackupOptions,
    TreePlacement, TreeRestoreOptions, place_trees,
};
use backup_repository::{BackupSession, Index, Repository, SnapshotFile, default_workers};
use backup_usecases::snapshot::{hostname, new_snapshot};
use indicatif::HumanBytes;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// One backed-up directory, as reported.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BackedUpRow {
    path: String,
    files: u64,
    dirs: u64,
    bytes: u64,
    files_read: u64,
    files_unchanged: u64,
    warnings: usize,
}

impl Tabular for BackedUpRow {
    fn headers() -> Vec<&'static str> {
        vec![
            "PATH",
            "FILES",
            "DIRS",
            "SIZE",
            "READ",
            "UNCHANGED",
            "WARNINGS",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.path.clone(),
            self.files.to_string(),
            self.dirs.to_string(),
            HumanBytes(self.bytes).to_string(),
            self.files_read.to_string(),
            self.files_unchanged.to_string(),
            self.warnings.to_string(),
        ]
    }
}

/// `kbackup backup path DIR...`.
pub async fn backup(context: &Context, command: BackupCommand) -> CliResult {
    let BackupCommand::Path {
        dirs,
        repo,
        exclude,
        marks,
        force,
    } = command
    else {
        unreachable!("routed here for `backup path` only")
    };
    let exclude = PathPatterns::new(&exclude).map_err(|e| CliError::user(anyhow!(e)))?;
    let roots = dirs
        .iter()
        .map(|dir| {
            std::fs::canonicalize(dir)
                .map_err(|e| CliError::user(anyhow!("{}: {e}", dir.display())))
        })
        .collect::<Result<Vec<PathBuf>, _>>()?;
    let repository = open(context, &repo).await?;
    let snapshots = repository.snapshots().await?;
    let started = Instant::now();
    let mut session = BackupSession::start(&repository, default_workers()).await?;
    let source = hostname();
    let mut parents = Vec::new();
    for root in &roots {
        let name = root.to_string_lossy().into_owned();
        let parent = match force {
            true => Arc::default(),
            false => Arc::new(
                parent_files(&repository, session.index(), &snapshots, &source, &name).await?,
            ),
        };
        parents.push(parent);
    }
    let progress = context.progress();
    let (mut trees, mut components, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    for (root, parent) in roots.iter().zip(parents) {
        let options = TreeBackupOptions {
            exclude: exclude.clone(),
            parent,
        };
        let tree_started = Instant::now();
        progress.start(&format!("backing up {}", root.display()), None);
        let report = session
            .add_tree(root, &options, |n| progress.advance(n))
            .await?;
        progress.finish();
        for warning in &report.warnings {
            context.info(&format!("warning: {warning}"));
        }
        let mut component = Component::new(&report.content.name, TREE_ENGINE)
            .succeeded(report.content.bytes, tree_started.elapsed());
        if !report.warnings.is_empty() {
            component.phase = Phase::PartiallyFailed;
            component.error = Some(format!(
                "{} entries not backed up (first: {})",
                report.warnings.len(),
                report.warnings[0]
            ));
        }
        rows.push(BackedUpRow {
            path: report.content.name.clone(),
            files: report.content.files,
            dirs: report.content.dirs,
            bytes: report.content.bytes,
            files_read: report.files_read,
            files_unchanged: report.files_unchanged,
            warnings: report.warnings.len(),
        });
        components.push(component);
        trees.push(report.content);
    }
    let stats = session.finish().await?;
    let totals = Totals {
        items: trees.iter().map(|t| t.files + t.dirs).sum(),
        bytes: trees.iter().map(|t| t.bytes).sum(),
        added_bytes: stats.added_bytes,
    };
    let snapshot = new_snapshot(marks.into(), Default::default(), components, totals);
    let partial = snapshot.phase() == Phase::PartiallyFailed;
    let id = repository
        .write_snapshot(SnapshotFile {
            snapshot,
            streams: vec![],
            trees,
        })
        .await?;
    note_adopted(context, stats.adopted_packs);
    context.info(&format!(
        "snapshot {} saved in {:.1}s: {} of {} chunks new, {} added",
        id.short(),
        started.elapsed().as_secs_f64(),
        stats.chunks - stats.deduplicated,
        stats.chunks,
        HumanBytes(stats.added_bytes)
    ));
    emit(context.output, &rows)?;
    Ok(if partial {
        Exit::Partial
    } else {
        Exit::Success
    })
}

/// The files of `name` in the newest snapshot of this host that has it.
async fn parent_files(
    repository: &Repository,
    index: &Index,
    snapshots: &[SnapshotFile],
    source: &str,
    name: &str,
) -> Result<HashMap<RawPath, Node>, CliError> {
    let Some(tree) = snapshots
        .iter()
        .rev()
        .filter(|s| s.snapshot.source == source)
        .find_map(|s| s.trees.iter().find(|t| t.name == name))
    else {
        return Ok(HashMap::new());
    };
    Ok(repository
        .read_tree_listing(index, tree)
        .await?
        .into_iter()
        .filter(|n| matches!(n.kind, NodeKind::File | NodeKind::Hardlink))
        .map(|n| (n.path.clone(), n))
        .collect())
}

/// One restored directory, as reported.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RestoredRow {
    component: String,
    target: String,
    dirs: u64,
    files: u64,
    symlinks: u64,
    hardlinks: u64,
    bytes: u64,
}

impl Tabular for RestoredRow {
    fn headers() -> Vec<&'static str> {
        vec![
            "COMPONENT",
            "TARGET",
            "DIRS",
            "FILES",
            "SYMLINKS",
            "HARD LINKS",
            "SIZE",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.component.clone(),
            self.target.clone(),
            self.dirs.to_string(),
            self.files.to_string(),
            self.symlinks.to_string(),
            self.hardlinks.to_string(),
            HumanBytes(self.bytes).to_string(),
        ]
    }
}

/// `kbackup restore path ID[:COMPONENT] --target DIR`.
pub async fn restore(context: &Context, command: RestoreCommand) -> CliResult {
    let RestoreCommand::Path {
        snapshot,
        repo,
        target,
        include,
        overwrite,
        among,
        workers,
    } = command
    else {
        unreachable!("routed here for `restore path` only")
    };
    let include = PathPatterns::new(&include).map_err(|e| CliError::user(anyhow!(e)))?;
    let (wanted, component) = match snapshot.split_once(':') {
        Some((id, component)) => (id, Some(component)),
        None => (snapshot.as_str(), None),
    };
    let repository = open(context, &repo).await?;
    let snapshots = repository.snapshots().await?;
    let file = find_snapshot(&snapshots, wanted, &among, &repo.repo)?;
    let placements: Vec<TreePlacement> = match component {
        Some(name) => {
            let tree = file.trees.iter().find(|t| t.name == name).ok_or_else(|| {
                CliError::user(anyhow!(
                    "snapshot {} has no directory component '{name}' (it has: {})",
                    file.snapshot.id.short(),
                    names(file)
                ))
            })?;
            vec![TreePlacement {
                tree,
                place: RawPath::default(),
                skip: vec![],
            }]
        }
        None => place_trees(&file.trees)?,
    };
    if placements.is_empty() {
        return Err(CliError::user(anyhow!(
            "snapshot {} holds no directory (its components: {})",
            file.snapshot.id.short(),
            file.snapshot
                .components
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let index = repository.load_index().await?;
    let root = RestoreTarget::open(&target)
        .map_err(|e| CliError::user(anyhow!("{}: {e}", target.display())))?;
    let progress = context.progress();
    let mut rows = Vec::new();
    for placement in placements {
        let tree = placement.tree;
        let options = TreeRestoreOptions {
            include: include.clone(),
            skip: placement.skip,
            overwrite,
            workers,
        };
        let at = root
            .below(&placement.place)
            .map_err(|e| CliError::user(anyhow!("{}: {e}", tree.name)))?;
        progress.start(&format!("restoring {}", tree.name), Some(tree.bytes));
        let report = repository
            .restore_tree(&index, tree, &at, &options, &|n| progress.advance(n))
            .await;
        progress.finish();
        let report = report?;
        for warning in &report.warnings {
            context.info(&format!("warning: {warning}"));
        }
        rows.push(RestoredRow {
            component: tree.name.clone(),
            target: at.path().display().to_string(),
            dirs: report.dirs,
            files: report.files,
            symlinks: report.symlinks,
            hardlinks: report.hardlinks,
            bytes: report.bytes,
        });
    }
    emit(context.output, &rows)?;
    Ok(Exit::Success)
}

fn names(file: &SnapshotFile) -> String {
    file.trees
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
