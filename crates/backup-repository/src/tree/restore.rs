//! Restoring a tree component into a directory. Every entry is made below an opened handle
//! of the target without following links ([`RestoreTarget`]), files and directories stay
//! private until their own metadata is applied, and files, symlinks and hard links appear
//! under their names only when complete.

use super::{Node, NodeKind, PathPatterns, RawPath, TreeContent};
use crate::index::{Index, parse_id};
use crate::repository::{Repository, RepositoryError};
use backup_core::progress::Progress;
use futures::{StreamExt, TryStreamExt};
use std::collections::HashSet;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

mod flusher;
mod reads;
mod target;

use flusher::Flusher;
use reads::{Destination, PartFile, ReadPlan};
pub use target::RestoreTarget;
use target::{Occupied, Temp};

/// A listing is read into memory; larger ones are refused as damaged.
const MAX_LISTING: u64 = 1 << 30;
/// Memory reserved for a listing before its bytes arrive.
const LISTING_RESERVE: u64 = 16 << 20;

/// How to restore a tree.
#[derive(Debug, Clone)]
pub struct TreeRestoreOptions {
    /// Only entries matching (and everything below a matching directory, and the
    /// directories above it); empty: all.
    pub include: PathPatterns,
    /// Entries at or below these paths are left out (another tree of the snapshot is
    /// restored there).
    pub skip: Vec<RawPath>,
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

/// Where restored entries go and how: shared by the worker threads.
pub(super) struct Output {
    target: RestoreTarget,
    owners: Owners,
    overwrite: bool,
}

impl Output {
    fn local(&self, path: &RawPath, error: &std::io::Error) -> RepositoryError {
        local(&self.target.display(path), error)
    }

    /// Renames a complete entry into place.
    fn commit(&self, temp: &Temp) -> std::io::Result<()> {
        self.target.commit(temp, self.overwrite)
    }
}

impl Repository {
    /// Reads a tree's listing (every node, in walk order); see [`parse_listing`].
    pub async fn read_tree_listing(
        &self,
        index: &Index,
        tree: &TreeContent,
    ) -> Result<Vec<Node>, RepositoryError> {
        check_listing_size(tree)?;
        let mut bytes = Vec::with_capacity(tree.listing.size.min(LISTING_RESERVE) as usize);
        self.restore_stream(index, &tree.listing, &mut bytes)
            .await?;
        parse_listing(&tree.name, &bytes)
    }

    /// Restores `tree` into `target`: directories, then file contents (fetched pack by pack,
    /// `options.workers` reads at a time, all-zero chunks left as holes) each with its mode,
    /// owner and times, then links, and last the directories' metadata, deepest first (the
    /// root's only when the restore made it). Returns once all of it is on disk (written
    /// out while the restore goes on). Existing files refuse the restore before
    /// anything is written, unless `options.overwrite`; a failed restore removes what it
    /// had not finished.
    pub async fn restore_tree(
        &self,
        index: &Index,
        tree: &TreeContent,
        target: &RestoreTarget,
        options: &TreeRestoreOptions,
        progress: &dyn Progress,
    ) -> Result<TreeRestoreReport, RepositoryError> {
        let output = Arc::new(Output {
            target: target.clone(),
            owners: Owners::default(),
            overwrite: options.overwrite,
        });
        let restored = self
            .restore_tree_into(index, tree, &output, options, progress)
            .await;
        if restored.is_err() {
            output.target.discard_temps();
        }
        restored
    }

    async fn restore_tree_into(
        &self,
        index: &Index,
        tree: &TreeContent,
        output: &Arc<Output>,
        options: &TreeRestoreOptions,
        progress: &dyn Progress,
    ) -> Result<TreeRestoreReport, RepositoryError> {
        let listing = self.read_tree_listing(index, tree).await?;
        let nodes = chosen(listing, &tree.name, options);
        // Into an empty directory nothing can be in the way (a file made there meanwhile
        // still is never replaced: see RestoreTarget::commit).
        let empty = output
            .target
            .is_empty()
            .map_err(|e| local(output.target.path(), &e))?;
        if !empty {
            refuse_existing(&nodes, &output.target, options.overwrite)?;
        }
        let flusher = Flusher::start(output.target.dir_fd());
        let mut report = TreeRestoreReport::default();
        for dir in nodes.iter().filter(|n| n.kind == NodeKind::Dir) {
            if !dir.path.0.is_empty() {
                output
                    .target
                    .make_dir(&dir.path, options.overwrite)
                    .map_err(|e| output.local(&dir.path, &e))?;
            }
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
        let mut plan = ReadPlan::default();
        let mut parted: Vec<Arc<PartFile>> = Vec::new();
        for node in &written {
            let stamp = Stamp::of(node);
            if let [only] = node.chunks.as_slice() {
                let (pack, location) = index.require(&parse_id(only)?)?;
                let path = node.path.clone();
                plan.add(pack, &location, Destination::Whole { path, stamp });
                continue;
            }
            let chunks = node
                .chunks
                .iter()
                .map(|c| index.require(&parse_id(c)?))
                .collect::<Result<Vec<_>, _>>()?;
            let size = chunks.iter().map(|(_, l)| u64::from(l.plain_length)).sum();
            let file = Arc::new(PartFile::new(node.path.clone(), size, stamp, chunks.len()));
            let mut offset = 0u64;
            for (pack, location) in chunks {
                let to = Destination::Part {
                    file: file.clone(),
                    offset,
                };
                plan.add(pack, &location, to);
                offset += u64::from(location.plain_length);
            }
            parted.push(file);
        }
        let creating = output.clone();
        tokio::task::spawn_blocking(move || parted.iter().try_for_each(|f| f.create(&creating)))
            .await??;
        report.bytes = futures::stream::iter(
            plan.into_reads()
                .into_iter()
                .map(|read| self.restore_pack_read(read, output.clone(), progress)),
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
                    make_symlink(output, node).map_err(|e| output.local(&node.path, &e))?;
                    report.symlinks += 1;
                }
                NodeKind::Hardlink if !files.contains(&node.path) => {
                    let source = node.target.as_ref().expect("a restored file");
                    output
                        .target
                        .hard_link_temp(&node.path, source)
                        .and_then(|temp| output.commit(&temp))
                        .map_err(|e| output.local(&node.path, &e))?;
                    report.hardlinks += 1;
                }
                _ => {}
            }
        }
        // Files and symlinks have their metadata already, hard links share their file's;
        // directories get theirs now, deepest first.
        for dir in nodes.iter().rev().filter(|n| n.kind == NodeKind::Dir) {
            if dir.path.0.is_empty() && output.target.existed() {
                continue;
            }
            output
                .target
                .open_dir(&dir.path)
                .and_then(|fd| Stamp::of(dir).apply(fd, &output.owners))
                .map_err(|e| output.local(&dir.path, &e))?;
        }
        let target = output.target.path().to_path_buf();
        tokio::task::spawn_blocking(move || flusher.finish())
            .await?
            .map_err(|e| local(&target, &e))?;
        report.warnings.extend(output.owners.warning());
        Ok(report)
    }
}

/// Refuses a listing larger than [`MAX_LISTING`] as damaged, before any of it is read.
pub(super) fn check_listing_size(tree: &TreeContent) -> Result<(), RepositoryError> {
    match tree.listing.size > MAX_LISTING {
        true => Err(RepositoryError::Corrupt(format!(
            "listing of {}: {} bytes is too large",
            tree.name, tree.listing.size
        ))),
        false => Ok(()),
    }
}

/// Parses the listing of tree `name` (JSON lines of [`Node`]s). A malformed listing is
/// refused: the root first and a directory, each other entry's path plain (no `..`, `.`,
/// empty name or NUL), unique and below a directory listed before it, links with a target,
/// owners that exist.
pub fn parse_listing(name: &str, bytes: &[u8]) -> Result<Vec<Node>, RepositoryError> {
    let corrupt = |line: usize, why: String| {
        RepositoryError::Corrupt(format!("listing of {name}: entry {line}: {why}"))
    };
    let mut dirs: HashSet<Vec<u8>> = HashSet::new();
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .enumerate()
        .map(|(n, line)| {
            let node: Node =
                serde_json::from_slice(line).map_err(|e| corrupt(n + 1, e.to_string()))?;
            check_node(&node, n == 0, &dirs, &seen).map_err(|why| corrupt(n + 1, why))?;
            if node.kind == NodeKind::Dir {
                dirs.insert(node.path.0.clone());
            }
            seen.insert(node.path.0.clone());
            Ok(node)
        })
        .collect()
}

/// Makes a symlink with its owner and time, under a temporary name first.
fn make_symlink(output: &Output, node: &Node) -> std::io::Result<()> {
    let to = node
        .target
        .as_ref()
        .expect("checked: symlinks have a target");
    let (temp, owned) = output.target.symlink_temp(
        &node.path,
        to,
        (node.uid, node.gid),
        (node.mtime, node.mtime_nsec),
    )?;
    output.owners.note(owned);
    output.commit(&temp)
}

/// Why a node cannot be restored as listed, if it cannot.
fn check_node(
    node: &Node,
    first: bool,
    dirs: &HashSet<Vec<u8>>,
    seen: &HashSet<Vec<u8>>,
) -> Result<(), String> {
    let path = &node.path;
    if first != path.0.is_empty() {
        return Err("the root must be the first entry, and only it has an empty path".into());
    }
    if first && node.kind != NodeKind::Dir {
        return Err("the root is not a directory".into());
    }
    if !inside(path) {
        return Err(format!("path {:?} leaves the tree", path.display()));
    }
    if seen.contains(&path.0) {
        return Err(format!("{:?} is listed twice", path.display()));
    }
    if !first && !dirs.contains(path.split_last().0) {
        return Err(format!(
            "{:?} is not below a directory listed before it",
            path.display()
        ));
    }

    if u32::MAX == node.uid || u32::MAX == node.gid {
        return Err(format!("{:?} has owner -1", path.display()));
    }
    match (node.kind, &node.target) {
        (NodeKind::Symlink | NodeKind::Hardlink, None) => {
            Err(format!("link {:?} has no target", path.display()))
        }
        (NodeKind::Hardlink, Some(target)) if !inside(target) || target.0.is_empty() => Err(
            format!("hard link target {:?} leaves the tree", target.display()),
        ),
        (NodeKind::Symlink, Some(target)) if target.0.is_empty() || target.0.contains(&0) => {
            Err(format!("symlink {:?} has an empty target", path.display()))
        }
        _ => Ok(()),
    }
}

/// Whether `path` lies strictly below `dir`.
fn is_below(path: &RawPath, dir: &RawPath) -> bool {
    path.0.len() > dir.0.len() && path.0.starts_with(&dir.0) && path.0[dir.0.len()] == b'/'
}

/// The nodes a restore makes: the root; those not skipped that match the patterns (or lie
/// below a matching directory); and the directories above them.
fn chosen(listing: Vec<Node>, root: &str, options: &TreeRestoreOptions) -> Vec<Node> {
    let skipped = |path: &RawPath| {
        options
            .skip
            .iter()
            .any(|skip| path == skip || is_below(path, skip))
    };
    let picked: Vec<bool> = listing
        .iter()
        .map(|n| !skipped(&n.path) && selected(&n.path, root, &options.include))
        .collect();
    let mut above: HashSet<Vec<u8>> = HashSet::new();
    for node in listing
        .iter()
        .zip(&picked)
        .filter(|(_, p)| **p)
        .map(|(n, _)| n)
    {
        let path = &node.path.0;
        above.extend(
            path.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'/')
                .map(|(at, _)| path[..at].to_vec()),
        );
    }
    listing
        .into_iter()
        .zip(picked)
        .filter(|(n, picked)| {
            *picked || n.path.0.is_empty() || (n.kind == NodeKind::Dir && above.contains(&n.path.0))
        })
        .map(|(n, _)| n)
        .collect()
}

/// Writes a whole file (holes for zero blocks) and its metadata, under a temporary name
/// renamed into place once complete.
fn write_whole(
    output: &Output,
    path: &RawPath,
    content: &[u8],
    stamp: &Stamp,
) -> std::io::Result<()> {
    let (file, temp) = output.target.create_temp(path)?;
    if write_runs_at(&file, 0, content)? < content.len() as u64 {
        // A hole at the end: the length is set, not written.
        file.set_len(content.len() as u64)?;
    }
    stamp.apply(&file, &output.owners)?;
    drop(file);
    output.commit(&temp)
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

/// Whether a stored path stays inside the tree: empty (the root), or plain names joined by
/// single `/` (no `.`, `..`, empty name, leading `/` or NUL).
pub(super) fn inside(path: &RawPath) -> bool {
    path.0.is_empty()
        || path
            .0
            .split(|b| *b == b'/')
            .all(|name| !matches!(name, b"" | b"." | b"..") && !name.contains(&0))
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

/// Refuses a restore over existing entries unless asked (directories may exist), and a
/// directory where something else is restored in any case.
fn refuse_existing(
    nodes: &[Node],
    target: &RestoreTarget,
    overwrite: bool,
) -> Result<(), RepositoryError> {
    let mut existing: Vec<&RawPath> = Vec::new();
    // Directories whose place holds something else: nothing below them exists.
    let mut blocked: Vec<&RawPath> = Vec::new();
    for node in nodes.iter().filter(|n| !n.path.0.is_empty()) {
        let path = &node.path;
        if blocked.iter().any(|dir| is_below(path, dir)) {
            continue;
        }
        match target
            .occupied(path, node.kind == NodeKind::Dir)
            .map_err(|e| local(&target.display(path), &e))?
        {
            Occupied::Free => {}
            Occupied::Directory => {
                return Err(RepositoryError::Local(format!(
                    "{} is a directory: not replaced by a file",
                    target.display(path).display()
                )));
            }
            Occupied::Entry => {
                if node.kind == NodeKind::Dir {
                    blocked.push(path);
                }
                if !overwrite {
                    existing.push(path);
                }
            }
        }
    }
    match existing.as_slice() {
        [] => Ok(()),
        [first, ..] => Err(RepositoryError::TargetNotEmpty {
            count: existing.len(),
            first: target.display(first).display().to_string(),
        }),
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
    mtime: (i64, u32),
}

impl Stamp {
    fn of(node: &Node) -> Self {
        Self {
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
            mtime: (node.mtime, node.mtime_nsec),
        }
    }

    /// Owner (refusals counted), then mode (a change of owner may clear set-id bits), then
    /// access and modification times, through an open handle.
    fn apply(&self, fd: impl AsFd, owners: &Owners) -> std::io::Result<()> {
        owners.note(std::os::unix::fs::fchown(
            &fd,
            Some(self.uid),
            Some(self.gid),
        ));
        rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(self.mode & 0o7777))?;
        let time = target::timespec(self.mtime);
        let times = rustix::fs::Timestamps {
            last_access: time,
            last_modification: time,
        };
        Ok(rustix::fs::futimens(&fd, &times)?)
    }
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
        assert!(!inside(&RawPath(b"a/./b".to_vec())));
        assert!(!inside(&RawPath(b"a//b".to_vec())));
        assert!(!inside(&RawPath(b"a/".to_vec())));
        assert!(!inside(&RawPath(b"a\0b".to_vec())));
    }
}
