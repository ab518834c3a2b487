//! `kbackup backup path` and `kbackup restore path`: directory trees in the repository.

use crate::cli::{PathBackupArgs, PathRestoreArgs};
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use crate::repository::{find_snapshot, note_adopted, open};
use anyhow::anyhow;
use backup_core::Phase;
use backup_repository::tree::PathPatterns;
use backup_usecases::trees::{
    TreeBackupRequest, TreeError, TreeRestoreRequest, back_up_trees, restore_trees,
};
use indicatif::HumanBytes;
use serde::Serialize;

impl From<TreeError> for CliError {
    fn from(error: TreeError) -> Self {
        match error {
            TreeError::Repository(error) => error.into(),
            other => CliError::user(other),
        }
    }
}

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
pub async fn backup(context: &Context, args: PathBackupArgs) -> CliResult {
    let PathBackupArgs {
        dirs,
        repo,
        exclude,
        marks,
        force,
    } = args;
    let exclude = PathPatterns::new(&exclude).map_err(|e| CliError::user(anyhow!(e)))?;
    let repository = open(context, &repo).await?;
    let request = TreeBackupRequest {
        dirs,
        exclude,
        force,
        marks: marks.into(),
    };
    let done = back_up_trees(&repository, request, &context.progress()).await?;
    for warning in done.trees.iter().flat_map(|t| &t.warnings) {
        context.info(&format!("warning: {warning}"));
    }
    note_adopted(context, done.adopted_packs);
    context.info(&format!(
        "snapshot {} saved in {:.1}s: {} of {} chunks new, {} added",
        done.id.short(),
        done.duration.as_secs_f64(),
        done.chunks - done.deduplicated,
        done.chunks,
        HumanBytes(done.added_bytes)
    ));
    let rows: Vec<BackedUpRow> = done
        .trees
        .into_iter()
        .map(|t| BackedUpRow {
            path: t.path,
            files: t.files,
            dirs: t.dirs,
            bytes: t.bytes,
            files_read: t.files_read,
            files_unchanged: t.files_unchanged,
            warnings: t.warnings.len(),
        })
        .collect();
    emit(context.output, &rows)?;
    Ok(match done.phase {
        Phase::PartiallyFailed => Exit::Partial,
        _ => Exit::Success,
    })
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
pub async fn restore(context: &Context, args: PathRestoreArgs) -> CliResult {
    let PathRestoreArgs {
        snapshot,
        repo,
        target,
        include,
        overwrite,
        verify,
        among,
        workers,
    } = args;
    let include = PathPatterns::new(&include).map_err(|e| CliError::user(anyhow!(e)))?;
    let (wanted, component) = match snapshot.split_once(':') {
        Some((id, component)) => (id, Some(component.to_owned())),
        None => (snapshot.as_str(), None),
    };
    let repository = open(context, &repo).await?;
    let snapshots = repository.snapshots().await?;
    let file = find_snapshot(&snapshots, wanted, &among, &repo.repo)?;
    let request = TreeRestoreRequest {
        target,
        component,
        include,
        overwrite,
        workers,
        verify,
    };
    let restored = restore_trees(&repository, file, request, &context.progress()).await?;
    for warning in restored.iter().flat_map(|t| &t.report.warnings) {
        context.info(&format!("warning: {warning}"));
    }
    for tree in &restored {
        if let Some(verified) = &tree.verification {
            context.info(&format!(
                "{}: read back identical to the snapshot ({} files, {})",
                tree.component,
                verified.files,
                HumanBytes(verified.bytes)
            ));
        }
    }
    let rows: Vec<RestoredRow> = restored
        .into_iter()
        .map(|t| RestoredRow {
            component: t.component,
            target: t.target,
            dirs: t.report.dirs,
            files: t.report.files,
            symlinks: t.report.symlinks,
            hardlinks: t.report.hardlinks,
            bytes: t.report.bytes,
        })
        .collect();
    emit(context.output, &rows)?;
    Ok(Exit::Success)
}
