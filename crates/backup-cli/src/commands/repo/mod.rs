//! `kbackup repo ...`, `kbackup snapshot ...`, `kbackup backup stdin`, and the path
//! backup and restore: the kbackup repository. This module routes; each command is a file.

mod check;
mod forget;
mod init;
mod keys;
mod prune;
mod snapshots;
mod stdin;
pub mod tree;

pub use stdin::backup_stdin;

use crate::cli::{RepoCommand, SnapshotCommand};
use crate::context::Context;
use crate::exit::CliResult;
use backup_core::RetentionPolicy;

/// `kbackup repo ...`.
pub async fn repo(context: &Context, command: RepoCommand) -> CliResult {
    match command {
        RepoCommand::Init {
            repo,
            compression_level,
            kdf,
        } => init::init(context, &repo, compression_level, kdf).await,
        RepoCommand::Info { repo } => keys::info(context, &repo).await,
        RepoCommand::Prune {
            repo,
            grace,
            repack_unused,
            dry_run,
        } => prune::prune(context, &repo, grace, repack_unused, dry_run).await,
        RepoCommand::Key { action } => keys::key(context, action).await,
        RepoCommand::Check { repo, read_data } => check::check(context, &repo, read_data).await,
    }
}

/// `kbackup snapshot ...`.
pub async fn snapshot(context: &Context, command: SnapshotCommand) -> CliResult {
    match command {
        SnapshotCommand::Delete {
            snapshot,
            repo,
            among,
        } => snapshots::delete(context, &repo, &snapshot, &among).await,
        SnapshotCommand::Diff {
            first,
            second,
            repo,
        } => super::cluster::diff(context, &repo, &first, &second).await,
        SnapshotCommand::Describe {
            snapshot,
            repo,
            among,
        } => super::cluster::describe(context, &repo, &snapshot, &among).await,
        SnapshotCommand::List { repo, among } => snapshots::list(context, &repo, &among).await,
        SnapshotCommand::Forget {
            repo,
            keep_last,
            keep_hourly,
            keep_daily,
            keep_weekly,
            keep_monthly,
            keep_yearly,
            keep_within,
            keep_tag,
            dry_run,
        } => {
            let policy = RetentionPolicy {
                keep_last,
                keep_hourly,
                keep_daily,
                keep_weekly,
                keep_monthly,
                keep_yearly,
                keep_within,
                keep_tags: keep_tag,
                keep_failed: 0,
            };
            forget::forget(context, &repo, policy, dry_run).await
        }
        SnapshotCommand::Cat {
            repo,
            target,
            among,
        } => snapshots::cat(context, &repo, &target, &among).await,
    }
}
