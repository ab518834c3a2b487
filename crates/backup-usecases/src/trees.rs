//! Directory trees in the repository: backed up (each against the newest snapshot of this
//! host that has it, so unchanged files are not read again) and restored into a target.

use crate::snapshot::{SnapshotMarks, hostname, new_snapshot};
use backup_core::{Component, Phase, Progress, SnapshotId, Totals};
use backup_repository::tree::{
    ParentListing, PathPatterns, RawPath, RestoreTarget, TREE_ENGINE, TreeBackupOptions,
    TreeContent, TreePlacement, TreeRestoreOptions, TreeRestoreReport, TreeVerification,
    place_trees,
};
use backup_repository::{
    BackupSession, Index, Repository, RepositoryError, SnapshotFile, default_workers,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why trees could not be backed up or restored.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// The repository failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    /// The snapshot asked for is not there.
    #[error(transparent)]
    Selection(#[from] crate::selection::SelectionError),
    /// A directory to back up, or the target, cannot be used.
    #[error("{}: {cause}", path.display())]
    Path {
        /// The directory.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The snapshot has no directory component of that name.
    #[error("snapshot {snapshot} has no directory component '{name}' (it has: {has})")]
    NoSuchComponent {
        /// The snapshot's short id.
        snapshot: String,
        /// The name asked for.
        name: String,
        /// The names it has.
        has: String,
    },
    /// The snapshot holds no directory at all.
    #[error("snapshot {snapshot} holds no directory (its components: {components})")]
    NoDirectory {
        /// The snapshot's short id.
        snapshot: String,
        /// Its components.
        components: String,
    },
    /// Read back after its restore, a directory differs from the snapshot.
    #[error("{count} entries of {component} as restored differ from the snapshot: {differences}")]
    Differs {
        /// The component.
        component: String,
        /// How many entries differ.
        count: u64,
        /// The first of them.
        differences: String,
    },
}

/// What to back up.
#[derive(Debug, Clone)]
pub struct TreeBackupRequest {
    /// The directories, each a component named by its canonical path.
    pub dirs: Vec<PathBuf>,
    /// Paths left out.
    pub exclude: PathPatterns,
    /// Read every file, even those unchanged since the previous snapshot.
    pub force: bool,
    /// The snapshot's tags and labels.
    pub marks: SnapshotMarks,
}

/// One directory backed up.
#[derive(Debug, Clone)]
pub struct BackedUpTree {
    /// Its canonical path (the component's name).
    pub path: String,
    /// Files.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Files read.
    pub files_read: u64,
    /// Files unchanged since the previous snapshot, not read.
    pub files_unchanged: u64,
    /// Entries not backed up, and why.
    pub warnings: Vec<String>,
}

/// What a tree backup did.
#[derive(Debug, Clone)]
pub struct TreeBackup {
    /// The new snapshot.
    pub id: SnapshotId,
    /// PartiallyFailed when entries could not be backed up.
    pub phase: Phase,
    /// Each directory.
    pub trees: Vec<BackedUpTree>,
    /// Chunks stored or found.
    pub chunks: u64,
    /// Of them, already in the repository.
    pub deduplicated: u64,
    /// Bytes the repository did not have yet.
    pub added_bytes: u64,
    /// Packs an interrupted backup had uploaded, reused.
    pub adopted_packs: usize,
    /// How long it took.
    pub duration: Duration,
}

/// Backs up directories into one new snapshot, one component each; `progress` counts the
/// bytes of each directory in turn.
pub async fn back_up_trees(
    repository: &Repository,
    request: TreeBackupRequest,
    progress: &dyn Progress,
) -> Result<TreeBackup, TreeError> {
    let roots = request
        .dirs
        .iter()
        .map(|dir| {
            std::fs::canonicalize(dir).map_err(|cause| TreeError::Path {
                path: dir.clone(),
                cause,
            })
        })
        .collect::<Result<Vec<PathBuf>, _>>()?;
    let snapshots = repository.snapshots().await?;
    let started = Instant::now();
    let mut session = BackupSession::start(repository, default_workers()).await?;
    let source = hostname();
    let mut parents = Vec::new();
    for root in &roots {
        let name = root.to_string_lossy().into_owned();
        let parent = match request.force {
            true => ParentListing::default(),
            false => {
                parent_listing(repository, session.index(), &snapshots, &source, &name).await?
            }
        };
        parents.push(parent);
    }
    let (mut contents, mut components, mut trees) = (Vec::new(), Vec::new(), Vec::new());
    for (root, parent) in roots.iter().zip(parents) {
        let options = TreeBackupOptions {
            exclude: request.exclude.clone(),
            parent,
        };
        let (component, tree, content) =
            back_up_one(&mut session, root, None, options, progress).await?;
        trees.push(tree);
        components.push(component);
        contents.push(content);
    }
    let stats = session.finish().await?;
    let totals = Totals {
        items: contents.iter().map(|t| t.files + t.dirs).sum(),
        bytes: contents.iter().map(|t| t.bytes).sum(),
        added_bytes: stats.added_bytes,
    };
    let snapshot = new_snapshot(request.marks, Default::default(), components, totals);
    let phase = snapshot.phase();
    let id = repository
        .write_snapshot(SnapshotFile {
            snapshot,
            streams: vec![],
            trees: contents,
        })
        .await?;
    Ok(TreeBackup {
        id,
        phase,
        trees,
        chunks: stats.chunks,
        deduplicated: stats.deduplicated,
        added_bytes: stats.added_bytes,
        adopted_packs: stats.adopted_packs,
        duration: started.elapsed(),
    })
}

/// Backs up one directory in a session, as the component `name` (its canonical path when
/// `None`): its component (PartiallyFailed when entries could not be backed up), what it
/// held, and its content for the snapshot.
pub(crate) async fn back_up_one(
    session: &mut BackupSession,
    root: &Path,
    name: Option<&str>,
    options: TreeBackupOptions,
    progress: &dyn Progress,
) -> Result<(Component, BackedUpTree, TreeContent), TreeError> {
    let started = Instant::now();
    progress.start(&format!("backing up {}", root.display()), None);
    let report = session.add_tree(root, options, progress).await;
    progress.finish();
    let mut report = report?;
    if let Some(name) = name {
        report.content.name = name.to_owned();
    }
    let mut component = Component::new(&report.content.name, TREE_ENGINE)
        .succeeded(report.content.bytes, started.elapsed());
    if let Some(first) = report.warnings.first() {
        component.phase = Phase::PartiallyFailed;
        component.error = Some(format!(
            "{} entries not backed up (first: {first})",
            report.warnings.len(),
        ));
    }
    let tree = BackedUpTree {
        path: report.content.name.clone(),
        files: report.content.files,
        dirs: report.content.dirs,
        bytes: report.content.bytes,
        files_read: report.files_read,
        files_unchanged: report.files_unchanged,
        warnings: report.warnings,
    };
    Ok((component, tree, report.content))
}

/// `name` in the newest snapshot of this host that has it, if one has.
async fn parent_listing(
    repository: &Repository,
    index: &Index,
    snapshots: &[SnapshotFile],
    source: &str,
    name: &str,
) -> Result<ParentListing, RepositoryError> {
    match snapshots
        .iter()
        .rev()
        .filter(|s| s.snapshot.source == source)
        .find_map(|s| s.trees.iter().find(|t| t.name == name))
    {
        Some(tree) => repository.parent_listing(index, tree).await,
        None => Ok(ParentListing::default()),
    }
}

/// Where and what to restore.
#[derive(Debug, Clone)]
pub struct TreeRestoreRequest {
    /// The target directory.
    pub target: PathBuf,
    /// One component (restored into the target itself), or every directory of the
    /// snapshot (each at its place below the target).
    pub component: Option<String>,
    /// Only these paths.
    pub include: PathPatterns,
    /// Replace entries that exist in the target.
    pub overwrite: bool,
    /// Files written at the same time.
    pub workers: usize,
    /// Each whole directory read back after its restore and compared with the snapshot
    /// (content chunk by chunk, sizes, directories, links); a difference fails the restore.
    pub verify: bool,
}

/// One directory restored.
#[derive(Debug, Clone)]
pub struct RestoredTree {
    /// The component.
    pub component: String,
    /// Where it went.
    pub target: String,
    /// What was written, and what could not be restored as it was.
    pub report: TreeRestoreReport,
    /// What reading it back found (a whole directory, asked to be verified).
    pub verification: Option<TreeVerification>,
}

/// Restores a snapshot's directories into a target; `progress` counts the bytes of each
/// directory in turn.
pub async fn restore_trees(
    repository: &Repository,
    file: &SnapshotFile,
    request: TreeRestoreRequest,
    progress: &dyn Progress,
) -> Result<Vec<RestoredTree>, TreeError> {
    let placements: Vec<TreePlacement> = match &request.component {
        Some(name) => {
            let tree = file.trees.iter().find(|t| &t.name == name).ok_or_else(|| {
                TreeError::NoSuchComponent {
                    snapshot: file.snapshot.id.short().to_owned(),
                    name: name.clone(),
                    has: file
                        .trees
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                }
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
        return Err(TreeError::NoDirectory {
            snapshot: file.snapshot.id.short().to_owned(),
            components: file
                .snapshot
                .components
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let index = repository.load_index().await?;
    let target_error = |cause| TreeError::Path {
        path: request.target.clone(),
        cause,
    };
    let root = RestoreTarget::open(&request.target).map_err(target_error)?;
    let mut restored = Vec::new();
    for placement in placements {
        let tree = placement.tree;
        let options = TreeRestoreOptions {
            include: request.include.clone(),
            skip: placement.skip,
            overwrite: request.overwrite,
            workers: request.workers,
        };
        let at = root
            .below(&placement.place)
            .map_err(|cause| TreeError::Path {
                path: PathBuf::from(&tree.name),
                cause,
            })?;
        progress.start(&format!("restoring {}", tree.name), Some(tree.bytes));
        let report = repository
            .restore_tree(&index, tree, &at, &options, progress)
            .await;
        progress.finish();
        let report = report?;
        let whole = options.include.is_empty() && options.skip.is_empty();
        let verification = match request.verify && whole {
            true => Some(repository.verify_tree(&index, tree, &at).await?),
            false => None,
        };
        if let Some(found) = verification.as_ref().filter(|v| v.difference_count > 0) {
            return Err(TreeError::Differs {
                component: tree.name.clone(),
                count: found.difference_count,
                differences: found.differences.join("; "),
            });
        }
        restored.push(RestoredTree {
            component: tree.name.clone(),
            target: at.path().display().to_string(),
            report,
            verification,
        });
    }
    Ok(restored)
}
