//! Restoring a tree component into a directory.

use super::{Node, NodeKind, PathPatterns, RawPath, TreeContent};
use crate::repository::{Repository, RepositoryError};
use crate::stream::{Index, parse_id};
use futures::{StreamExt, TryStreamExt};
use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

mod reads;

use reads::{Destination, PartFile, ReadPlan};

/// How to restore a tree.
#[derive(Debug, Clone)]
pub struct TreeRestoreOptions {
    /// Only entries matching (and everything below a matching directory); empty: all.
    pub include: PathPatterns,
    /// Replace existing files; without it an existing file refuses the restore before
    /// anything is written.
    pub overwrite: bool,
    /// Ranged reads of packs in flight at the same time (each streamed, its chunks decoded
    /// and written as they arrive).
    pub workers: usize,
}

/// What a tree restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeRestoreReport {
    /// Directories.
    pub dirs: u64,
    /// Regular files written.
    pub files: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Hard links made.
    pub hardlinks: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// What could not be restored as it was (owners without privileges, say).
    pub warnings: Vec<String>,
}

impl Repository {
    /// Reads a tree's listing (every node, in walk order); a malformed listing or a path
    /// leaving the tree is refused.
    pub async fn read_tree_listing(
        &self,
        index: &Index,
        tree: &TreeContent,
    ) -> Result<Vec<Node>, RepositoryError> {
        let mut bytes = Vec::with_capacity(tree.listing.size as usize);
        self.restore_stream(index, &tree.listing, &mut bytes)
            .await?;
        let corrupt = |line: usize, why: String| {
            RepositoryError::Corrupt(format!("listing of {}: entry {line}: {why}", tree.name))
        };
        bytes
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .enumerate()
            .map(|(n, line)| {
                let node: Node =
                    serde_json::from_slice(line).map_err(|e| corrupt(n + 1, e.to_string()))?;
                let hard_target = node
                    .target
                    .as_ref()
                    .filter(|_| node.kind == NodeKind::Hardlink);
                for path in std::iter::once(&node.path).chain(hard_target) {
                    if !inside(path) {
                        return Err(corrupt(
                            n + 1,
                            format!("path {:?} leaves the tree", path.display()),
                        ));
                    }
                }
                Ok(node)
            })
            .collect()
    }

    /// Restores `tree` into `target` (created if missing): directories, then file contents
    /// (fetched pack by pack, `options.workers` reads at a time, all-zero chunks left as
    /// holes) each with its mode, owner and times, then links, and last the directories'
    /// metadata, deepest first.
    pub async fn restore_tree(
        &self,
        index: &Index,
        tree: &TreeContent,
        target: &Path,
        options: &TreeRestoreOptions,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<TreeRestoreReport, RepositoryError> {
        let nodes: Vec<Node> = self
            .read_tree_listing(index, tree)
            .await?
            .into_iter()
            .filter(|n| selected(&n.path, &tree.name, &options.include))
            .collect();
        refuse_existing(&nodes, target, options.overwrite)?;
        let mut report = TreeRestoreReport::default();
        let at = |node: &Node| target.join(node.path.to_path());
        for dir in nodes.iter().filter(|n| n.kind == NodeKind::Dir) {
            std::fs::create_dir_all(at(dir)).map_err(|e| local(&at(dir), &e))?;
            report.dirs += 1;
        }
        // Files, and hard links whose first name is not part of this restore.
        let restored: HashSet<&RawPath> = nodes
            .iter()
            .filter(|n| n.kind == NodeKind::File)
            .map(|n| &n.path)
            .collect();
        let written: Vec<&Node> = nodes
            .iter()
            .filter(|n| {
                n.kind == NodeKind::File
                    || (n.kind == NodeKind::Hardlink
                        && n.target.as_ref().is_none_or(|t| !restored.contains(t)))
            })
            .collect();
        // Files of several chunks (or none) are created empty first; then every needed
        // chunk is fetched pack by pack and written wherever it goes.
        let owners = Arc::new(Owners::default());
        let mut plan = ReadPlan::default();
        let mut parted: Vec<Arc<PartFile>> = Vec::new();
        for node in &written {
            let (path, stamp) = (at(node), Stamp::of(node));
            if let [only] = node.chunks.as_slice() {
                let (pack, location) = index.require(&parse_id(only)?)?;
                plan.add(pack, location, Destination::Whole { path, stamp });
                continue;
            }
            let chunks = node
                .chunks
                .iter()
                .map(|c| index.require(&parse_id(c)?))
                .collect::<Result<Vec<_>, _>>()?;
            let size = chunks.iter().map(|(_, l)| u64::from(l.plain_length)).sum();
            let file = Arc::new(PartFile::new(path, size, stamp, chunks.len()));
            let mut offset = 0u64;
            for (pack, location) in chunks {
                let to = Destination::Part {
                    file: file.clone(),
                    offset,
                };
                plan.add(pack, location, to);
                offset += u64::from(location.plain_length);
            }
            parted.push(file);
        }
        let creating = owners.clone();
        tokio::task::spawn_blocking(move || parted.iter().try_for_each(|f| f.create(&creating)))
            .await??;
        report.bytes = futures::stream::iter(
            plan.into_reads()
                .into_iter()
                .map(|read| self.restore_pack_read(read, owners.clone(), on_bytes)),
        )
        .buffer_unordered(options.workers.max(1))
        .try_fold(0u64, |total, written| {
            futures::future::ready(Ok(total + written))
        })
        .await?;
        report.files = written.len() as u64;
        let files: HashSet<&RawPath> = written.iter().map(|f| &f.path).collect();
        for node in &nodes {
            match node.kind {
                NodeKind::Symlink => {
                    let link = node
                        .target
                        .as_ref()
                        .map(RawPath::to_path)
                        .unwrap_or_default();
                    std::os::unix::fs::symlink(&link, at(node))
                        .map_err(|e| local(&at(node), &e))?;
                    report.symlinks += 1;
                }
                NodeKind::Hardlink if !files.contains(&node.path) => {
                    let first = target.join(node.target.as_ref().expect("checked").to_path());
                    std::fs::hard_link(&first, at(node)).map_err(|e| local(&at(node), &e))?;
                    report.hardlinks += 1;
                }
                _ => {}
            }
        }
        // Written files have their metadata already; links and directories get theirs now.
        for node in nodes
            .iter()
            .filter(|n| n.kind != NodeKind::Dir && !files.contains(&n.path))
        {
            set_metadata(node, &at(node), &owners)?;
        }
        for dir in nodes.iter().rev().filter(|n| n.kind == NodeKind::Dir) {
            set_metadata(dir, &at(dir), &owners)?;
        }
        report.warnings.extend(owners.warning());
        Ok(report)
    }
}

/// Writes a whole file (holes for zero blocks) and its metadata.
fn write_whole(path: &Path, content: &[u8], stamp: &Stamp, owners: &Owners) -> std::io::Result<()> {
    let file = create(path)?;
    if write_runs_at(&file, 0, content)? < content.len() as u64 {
        // A hole at the end: the length is set, not written.
        file.set_len(content.len() as u64)?;
    }
    stamp.apply(&file, owners)
}

/// Writes a chunk at `offset`, leaving its zero blocks unwritten; returns the offset after
/// the last byte written (`offset` if none was).
fn write_runs_at(file: &File, offset: u64, chunk: &[u8]) -> std::io::Result<u64> {
    let (mut at, mut written_to) = (offset, offset);
    for (data, is_hole) in runs(chunk) {
        at += data.len() as u64;
        if !is_hole {
            file.write_all_at(data, at - data.len() as u64)?;
            written_to = at;
        }
    }
    Ok(written_to)
}

/// Creates (or truncates) a file to restore; its parent directories too when missing (a
/// file selected by `--include` below a directory that is not).
fn create(path: &Path) -> std::io::Result<File> {
    match File::create(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            File::create(path)
        }
        created => created,
    }
}

/// Holes are left for all-zero blocks of this size.
const HOLE_BLOCK: usize = 4096;

/// A chunk as runs of data and of zero blocks (`true`), in order.
fn runs(chunk: &[u8]) -> Vec<(&[u8], bool)> {
    let mut runs: Vec<(&[u8], bool)> = Vec::new();
    let mut start = 0;
    for (n, block) in chunk.chunks(HOLE_BLOCK).enumerate() {
        let is_hole = block.len() == HOLE_BLOCK && block.iter().all(|b| *b == 0);
        let at = n * HOLE_BLOCK;
        if let Some((data, last_hole)) = runs.last_mut()
            && *last_hole == is_hole
        {
            *data = &chunk[start..at + block.len()];
            continue;
        }
        start = at;
        runs.push((&chunk[at..at + block.len()], is_hole));
    }
    runs
}

fn local(path: &Path, error: &std::io::Error) -> RepositoryError {
    RepositoryError::Local(format!("{}: {error}", path.display()))
}

/// Whether a stored path stays inside the tree: relative, no `..`, no empty names.
fn inside(path: &RawPath) -> bool {
    path.0.is_empty()
        || path
            .to_path()
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Whether a node is restored: no patterns, or it or a directory above it matches.
fn selected(path: &RawPath, root: &str, include: &PathPatterns) -> bool {
    if include.is_empty() || path.0.is_empty() {
        return true;
    }
    let text = path.display();
    text.match_indices('/')
        .map(|(at, _)| &text[..at])
        .chain(std::iter::once(text.as_str()))
        .any(|prefix| include.matches(root, prefix))
}

/// Refuses a restore over existing files unless asked; directories may exist.
fn refuse_existing(nodes: &[Node], target: &Path, overwrite: bool) -> Result<(), RepositoryError> {
    let mut existing: Vec<PathBuf> = Vec::new();
    for node in nodes {
        let path = target.join(node.path.to_path());
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if node.kind == NodeKind::Dir && meta.is_dir() => {}
            Ok(meta) if meta.is_dir() => {
                return Err(RepositoryError::Local(format!(
                    "{} is a directory: not replaced by a file",
                    path.display()
                )));
            }
            Ok(_) if overwrite => {
                std::fs::remove_file(&path).map_err(|e| local(&path, &e))?;
            }
            Ok(_) => existing.push(path),
            Err(_) => {}
        }
    }
    match existing.as_slice() {
        [] => Ok(()),
        [first, ..] => Err(RepositoryError::Local(format!(
            "{} entries exist in the target (first: {}): nothing written; use --overwrite to replace them",
            existing.len(),
            first.display()
        ))),
    }
}

/// Owners not restored (from any thread), reported once.
#[derive(Default)]
struct Owners {
    refused: AtomicU64,
    reason: OnceLock<String>,
}

impl Owners {
    /// Counts a refused change of owner.
    fn note(&self, changed: std::io::Result<()>) {
        if let Err(error) = changed {
            self.refused.fetch_add(1, Ordering::Relaxed);
            self.reason.get_or_init(|| error.to_string());
        }
    }

    fn warning(&self) -> Option<String> {
        self.reason.get().map(|reason| {
            format!(
                "owners of {} entries not restored ({reason}; restoring owners needs root)",
                self.refused.load(Ordering::Relaxed)
            )
        })
    }
}

/// A regular file's metadata, set through its open handle (no path lookups).
#[derive(Clone, Copy)]
struct Stamp {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: filetime::FileTime,
}

impl Stamp {
    fn of(node: &Node) -> Self {
        Self {
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
            mtime: filetime::FileTime::from_unix_time(node.mtime, node.mtime_nsec),
        }
    }

    /// Owner (refusals counted), then mode (a change of owner may clear set-id bits), then
    /// access and modification times.
    fn apply(&self, file: &File, owners: &Owners) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        owners.note(std::os::unix::fs::fchown(
            file,
            Some(self.uid),
            Some(self.gid),
        ));
        file.set_permissions(std::fs::Permissions::from_mode(self.mode))?;
        filetime::set_file_handle_times(file, Some(self.mtime), Some(self.mtime))
    }
}

/// Mode (not for symlinks), owner, and modification time of a restored entry.
fn set_metadata(node: &Node, path: &Path, owners: &Owners) -> Result<(), RepositoryError> {
    owners.note(std::os::unix::fs::lchown(
        path,
        Some(node.uid),
        Some(node.gid),
    ));
    if node.kind != NodeKind::Symlink {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(node.mode))
            .map_err(|e| local(path, &e))?;
    }
    let mtime = filetime::FileTime::from_unix_time(node.mtime, node.mtime_nsec);
    filetime::set_symlink_file_times(path, mtime, mtime).map_err(|e| local(path, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_blocks_become_holes_and_the_rest_is_written_once() {
        let mut chunk = vec![0u8; 3 * HOLE_BLOCK + 10];
        chunk[HOLE_BLOCK + 5] = 1;
        let runs = runs(&chunk);
        let shape: Vec<(usize, bool)> = runs.iter().map(|(d, h)| (d.len(), *h)).collect();
        assert_eq!(
            shape,
            vec![
                (HOLE_BLOCK, true),
                (HOLE_BLOCK, false),
                (HOLE_BLOCK, true),
                (10, false)
            ]
        );
        assert_eq!(
            runs.iter().map(|(d, _)| d.len()).sum::<usize>(),
            chunk.len()
        );
        let data = vec![7u8; 5 * HOLE_BLOCK];
        assert_eq!(super::runs(&data).len(), 1);
    }

    #[test]
    fn paths_must_stay_inside() {
        assert!(inside(&RawPath(b"a/b".to_vec())));
        assert!(inside(&RawPath(vec![])));
        assert!(!inside(&RawPath(b"../a".to_vec())));
        assert!(!inside(&RawPath(b"/etc/passwd".to_vec())));
        assert!(!inside(&RawPath(b"a/../../b".to_vec())));
    }
}
