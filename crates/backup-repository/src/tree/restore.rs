//! Restoring a tree component into a directory.

use super::{Node, NodeKind, PathPatterns, RawPath, TreeContent};
use crate::pack::BlobLocation;
use crate::repository::{Repository, RepositoryError};
use crate::stream::{Index, decode_stored, parse_id};
use futures::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Reads of one large file in flight at the same time.
const READS_AHEAD: usize = 2;
/// Neighbouring chunks of a file stored one after the other in a pack are read together,
/// up to this many stored bytes per read.
const READ_SPAN: u64 = 4 * 1024 * 1024;

/// How to restore a tree.
#[derive(Debug, Clone)]
pub struct TreeRestoreOptions {
    /// Only entries matching (and everything below a matching directory); empty: all.
    pub include: PathPatterns,
    /// Replace existing files; without it an existing file refuses the restore before
    /// anything is written.
    pub overwrite: bool,
    /// Files written at the same time.
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
    /// (`options.workers` files at a time, all-zero chunks left as holes) each with its mode,
    /// owner and times, then links, and last the directories' metadata, deepest first.
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
        // Files of one chunk are written pack by pack (one read for up to 4 MiB of a pack's
        // small files); larger ones chunk by chunk, a few chunks of a file at once. Both kinds
        // at the same time: the first cost the file system inodes, the others copying.
        let (small, large): (Vec<&Node>, Vec<&Node>) =
            written.iter().partition(|n| n.chunks.len() == 1);
        let mut by_pack: BTreeMap<String, Vec<SmallFile>> = BTreeMap::new();
        for node in small {
            let (pack, location) = index.require(&parse_id(&node.chunks[0])?)?;
            by_pack.entry(pack.clone()).or_default().push(SmallFile {
                path: at(node),
                location: *location,
                stamp: Stamp::of(node),
            });
        }
        let owners = Arc::new(Owners::default());
        let bytes = AtomicU64::new(0);
        let count = |size: u64| bytes.fetch_add(size, Ordering::Relaxed);
        let groups = by_pack.into_iter().flat_map(|(pack, files)| {
            span_groups(files)
                .into_iter()
                .map(move |g| (pack.clone(), g))
        });
        let small_files = futures::stream::iter(groups.map(|(pack, files)| {
            let owners = owners.clone();
            async move {
                let size = self.write_small_files(&pack, files, owners).await?;
                on_bytes(size);
                count(size);
                Ok::<_, RepositoryError>(())
            }
        }))
        .buffer_unordered(2)
        .try_collect::<()>();
        let large_files = futures::stream::iter(large.iter().map(|node| {
            let (path, owners) = (at(node), owners.clone());
            async move {
                count(
                    self.write_file(index, node, &path, owners, on_bytes)
                        .await?,
                );
                Ok::<_, RepositoryError>(())
            }
        }))
        .buffer_unordered(options.workers.max(1))
        .try_collect::<()>();
        futures::try_join!(small_files, large_files)?;
        report.files = written.len() as u64;
        let files: HashSet<&RawPath> = written.iter().map(|f| &f.path).collect();
        report.bytes = bytes.into_inner();
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

    /// Writes files of one chunk each, all in `pack`: one ranged read over their blobs, then
    /// one blocking call decodes and writes them all, each with its metadata.
    async fn write_small_files(
        &self,
        pack: &str,
        files: Vec<SmallFile>,
        owners: Arc<Owners>,
    ) -> Result<u64, RepositoryError> {
        let span = self
            .read_span(pack, files.iter().map(|f| &f.location))
            .await?;
        let (key, pack) = (self.key().clone(), pack.to_owned());
        tokio::task::spawn_blocking(move || {
            let mut size = 0u64;
            for file in files {
                let chunk = decode_stored(&key, &file.location, &pack, span.of(&file.location))?;
                write_whole(&file.path, &chunk, &file.stamp, &owners)
                    .map_err(|e| local(&file.path, &e))?;
                size += chunk.len() as u64;
            }
            Ok(size)
        })
        .await?
    }

    /// Writes one file of several chunks (or none): neighbouring chunks in a pack read
    /// together (up to [`READ_SPAN`]), decoded and written at their offsets by one blocking
    /// call, [`READS_AHEAD`] reads at a time; zero blocks left as holes (sparse files stay
    /// sparse); then the length and the metadata.
    async fn write_file(
        &self,
        index: &Index,
        node: &Node,
        path: &Path,
        owners: Arc<Owners>,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<u64, RepositoryError> {
        // Every chunk's offset in the file, from the lengths the index records, and the
        // chunks grouped into reads.
        let mut reads: Vec<(&str, Vec<(BlobLocation, u64)>)> = Vec::new();
        let mut size = 0u64;
        for hex_id in &node.chunks {
            let (pack, location) = index.require(&parse_id(hex_id)?)?;
            match reads.last_mut() {
                Some((last_pack, blobs))
                    if *last_pack == pack.as_str() && follows(blobs, location) =>
                {
                    blobs.push((*location, size));
                }
                _ => reads.push((pack, vec![(*location, size)])),
            }
            size += u64::from(location.plain_length);
        }
        let target = path.to_owned();
        let file = Arc::new(
            tokio::task::spawn_blocking(move || create(&target))
                .await?
                .map_err(|e| local(path, &e))?,
        );
        futures::stream::iter(reads.into_iter().map(|(pack, blobs)| {
            let file = file.clone();
            async move {
                let span = self.read_span(pack, blobs.iter().map(|(l, _)| l)).await?;
                let (key, pack, target) = (self.key().clone(), pack.to_owned(), path.to_owned());
                let written = tokio::task::spawn_blocking(move || {
                    let mut written = 0u64;
                    for (location, offset) in blobs {
                        let chunk = decode_stored(&key, &location, &pack, span.of(&location))?;
                        write_runs_at(&file, offset, &chunk).map_err(|e| local(&target, &e))?;
                        written += chunk.len() as u64;
                    }
                    Ok::<_, RepositoryError>(written)
                })
                .await??;
                on_bytes(written);
                Ok::<_, RepositoryError>(())
            }
        }))
        .buffer_unordered(READS_AHEAD)
        .try_collect::<()>()
        .await?;
        let stamp = Stamp::of(node);
        tokio::task::spawn_blocking(move || {
            // Trailing holes, and the length of an all-hole file.
            file.set_len(size)?;
            stamp.apply(&file, &owners)
        })
        .await?
        .map_err(|e| local(path, &e))?;
        Ok(size)
    }
}

/// Whether `next` is stored right after the last of `blobs` and still fits in one read.
fn follows(blobs: &[(BlobLocation, u64)], next: &BlobLocation) -> bool {
    let (first, last) = (&blobs[0].0, &blobs[blobs.len() - 1].0);
    last.offset + u64::from(last.length) == next.offset
        && next.offset + u64::from(next.length) - first.offset <= READ_SPAN
}

/// Files of one pack, in the order they are stored, cut into groups whose stored bytes span
/// at most [`READ_SPAN`] (one read each; a larger file is a group of its own).
fn span_groups(mut files: Vec<SmallFile>) -> Vec<Vec<SmallFile>> {
    files.sort_by_key(|f| f.location.offset);
    let mut groups: Vec<Vec<SmallFile>> = Vec::new();
    for file in files {
        let end = file.location.offset + u64::from(file.location.length);
        match groups.last_mut() {
            Some(group) if end - group[0].location.offset <= READ_SPAN => group.push(file),
            _ => groups.push(vec![file]),
        }
    }
    groups
}

/// A file of one chunk, where that chunk is, and the file's metadata.
struct SmallFile {
    path: PathBuf,
    location: BlobLocation,
    stamp: Stamp,
}

/// Writes a whole file (holes for zero blocks) and its metadata.
fn write_whole(path: &Path, content: &[u8], stamp: &Stamp, owners: &Owners) -> std::io::Result<()> {
    let file = create(path)?;
    write_runs_at(&file, 0, content)?;
    file.set_len(content.len() as u64)?;
    stamp.apply(&file, owners)
}

/// Writes a chunk at `offset`, leaving its zero blocks unwritten.
fn write_runs_at(file: &File, offset: u64, chunk: &[u8]) -> std::io::Result<()> {
    let mut at = offset;
    for (data, is_hole) in runs(chunk) {
        if !is_hole {
            file.write_all_at(data, at)?;
        }
        at += data.len() as u64;
    }
    Ok(())
}

/// Creates a file to restore, and its parent directories.
fn create(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    File::create(path)
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
