//! Backing up a directory tree into a [`BackupSession`].

use super::read_ahead::{self, DirEntries, DirEntry, ReadAhead};
use super::{Node, NodeKind, ParentListing, PathPatterns, RawPath, TreeContent};
use crate::repository::RepositoryError;
use crate::session::BackupSession;
use crate::stream::StreamContent;
use backup_core::progress::{NoProgress, Progress};
use std::collections::HashMap;
use std::fs::Metadata;
use std::io::{Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;
use tokio_util::compat::TokioAsyncReadCompatExt;

/// How to back up a tree.
#[derive(Debug)]
pub struct TreeBackupOptions {
    /// Entries left out (and, for directories, everything below them).
    pub exclude: PathPatterns,
    /// The same tree in an earlier snapshot: files whose size, times and inode did not
    /// change take their chunks from there without being read.
    pub parent: ParentListing,
}

/// What a tree backup did.
#[derive(Debug, Clone)]
pub struct TreeBackupReport {
    /// The component.
    pub content: TreeContent,
    /// Files read.
    pub files_read: u64,
    /// Files taken unchanged from the parent snapshot.
    pub files_unchanged: u64,
    /// Entries that could not be backed up (unreadable, vanished, special files), one line
    /// each naming the entry.
    pub warnings: Vec<String>,
}

/// Files up to this size are read by the walker's thread (no round trip per file through
/// the async runtime) unless the parent snapshot has them unchanged.
const SMALL_FILE: u64 = 64 * 1024;

/// A file's content as the walker found it.
enum Content {
    /// A small file, read.
    Read(Vec<u8>),
    /// Unchanged since the parent snapshot: its chunks there.
    Unchanged(Vec<String>),
    /// To be read by the session.
    Unread,
}

/// Batches of entries on their way from the walk to the session (one wake-up a batch, not
/// an entry): at most this many waiting, each of at most [`BATCH_ENTRIES`] entries or about
/// [`BATCH_BYTES`] of small files' content.
const BATCHES_AHEAD: usize = 4;
const BATCH_ENTRIES: usize = 128;
const BATCH_BYTES: usize = 1 << 20;

/// The walk's side of the batches.
struct Batches<'a> {
    sender: &'a mpsc::Sender<Vec<Found>>,
    batch: Vec<Found>,
    bytes: usize,
}

impl<'a> Batches<'a> {
    fn new(sender: &'a mpsc::Sender<Vec<Found>>) -> Self {
        Self {
            sender,
            batch: Vec::with_capacity(BATCH_ENTRIES),
            bytes: 0,
        }
    }

    /// Adds an entry, sending the batch once full; false once the session is gone.
    fn send(&mut self, found: Found) -> bool {
        if let Found::Entry {
            content: Content::Read(bytes),
            ..
        } = &found
        {
            self.bytes += bytes.len();
        }
        self.batch.push(found);
        if self.batch.len() < BATCH_ENTRIES && self.bytes < BATCH_BYTES {
            return true;
        }
        self.flush()
    }

    /// Sends what the batch holds (before the walk waits, and at its end); false once the
    /// session is gone.
    fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        self.bytes = 0;
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_ENTRIES));
        self.sender.blocking_send(batch).is_ok()
    }
}

/// An entry found by the walker.
enum Found {
    Entry {
        node: Node,
        absolute: PathBuf,
        /// Device and inode of a regular file with more than one name.
        linked: Option<(u64, u64)>,
        /// What the file holds: read by the walker, found unchanged in the parent, or to
        /// be read.
        content: Content,
    },
    Problem(String),
}

impl BackupSession {
    /// Backs up the directory `root` (walked on a thread of its own, file contents read
    /// through the session's workers); `progress` advances as file content is consumed.
    pub async fn add_tree(
        &mut self,
        root: &Path,
        options: TreeBackupOptions,
        progress: &dyn Progress,
    ) -> Result<TreeBackupReport, RepositoryError> {
        let root_meta = std::fs::metadata(root)
            .map_err(|e| RepositoryError::Local(format!("{}: {e}", root.display())))?;
        if !root_meta.is_dir() {
            return Err(RepositoryError::Local(format!(
                "{} is not a directory",
                root.display()
            )));
        }
        let name = root.to_string_lossy().into_owned();
        let (sender, mut found) = mpsc::channel(BATCHES_AHEAD);
        let walker = {
            let (root, exclude, mut parent) = (root.to_path_buf(), options.exclude, options.parent);
            tokio::task::spawn_blocking(move || {
                let mut out = Batches::new(&sender);
                walk(&root, &exclude, &mut parent, &mut out);
                out.flush();
            })
        };
        // The listing goes to an anonymous temporary file: memory stays bounded with any
        // number of entries.
        let mut listing = std::io::BufWriter::new(
            tempfile::tempfile().map_err(|e| local("a temporary file", &e))?,
        );
        let mut report = TreeBackupReport {
            content: TreeContent {
                name,
                listing: StreamContent::default(),
                files: 0,
                dirs: 0,
                bytes: 0,
            },
            files_read: 0,
            files_unchanged: 0,
            warnings: vec![],
        };
        let mut first_paths: HashMap<(u64, u64), RawPath> = HashMap::new();
        let mut batch = Vec::new().into_iter();
        while let Some(item) = next(&mut found, &mut batch).await {
            let (mut node, absolute, linked, content) = match item {
                Found::Problem(problem) => {
                    report.warnings.push(problem);
                    continue;
                }
                Found::Entry {
                    node,
                    absolute,
                    linked,
                    content,
                } => (node, absolute, linked, content),
            };
            if let Some(file_id) = linked {
                match first_paths.get(&file_id) {
                    Some(first) => {
                        node.kind = NodeKind::Hardlink;
                        node.target = Some(first.clone());
                    }
                    None => {
                        first_paths.insert(file_id, node.path.clone());
                    }
                }
            }
            if matches!(node.kind, NodeKind::File | NodeKind::Hardlink) {
                if let Err(problem) = self
                    .file_content(&mut node, (&absolute, content), &mut report, progress)
                    .await
                {
                    // A file that could not be read is a warning; a failure to store ends
                    // the backup.
                    if let Some(failure) = self.failure() {
                        return Err(RepositoryError::SessionFailed(failure.to_owned()));
                    }
                    report.warnings.push(problem);
                    continue;
                }
                report.content.files += 1;
                report.content.bytes += node.size;
            }
            if node.kind == NodeKind::Dir {
                report.content.dirs += 1;
            }
            serde_json::to_writer(&mut listing, &node).expect("a node serializes");
            listing
                .write_all(b"\n")
                .map_err(|e| local("the tree listing", &e))?;
        }
        walker.await?;
        let mut listing = listing
            .into_inner()
            .map_err(|e| local("the tree listing", e.error()))?;
        listing
            .rewind()
            .map_err(|e| local("the tree listing", &e))?;
        report.content.listing = self
            .add_stream(tokio::fs::File::from_std(listing).compat(), &NoProgress)
            .await?
            .named("listing");
        Ok(report)
    }

    /// Fills a file node's chunks: from the parent snapshot when unchanged and still stored,
    /// else by reading the file. An unreadable file is a warning, not a failed backup.
    async fn file_content(
        &mut self,
        node: &mut Node,
        (absolute, content): (&Path, Content),
        report: &mut TreeBackupReport,
        progress: &dyn Progress,
    ) -> Result<(), String> {
        let content = match content {
            Content::Unchanged(chunks)
                if chunks
                    .iter()
                    .all(|c| crate::index::parse_id(c).is_ok_and(|id| self.contains(&id))) =>
            {
                node.chunks = chunks;
                report.files_unchanged += 1;
                progress.advance(node.size);
                return Ok(());
            }
            Content::Read(bytes) => Some(bytes),
            Content::Unchanged(_) | Content::Unread => None,
        };
        let stored = match content {
            Some(bytes) => self.add_stream(bytes.as_slice(), progress).await,
            None => {
                let file = tokio::fs::File::open(absolute)
                    .await
                    .map_err(|e| format!("{}: {e}", absolute.display()))?;
                self.add_stream(file.compat(), progress).await
            }
        }
        .map_err(|e| format!("{}: {e}", absolute.display()))?;
        node.chunks = stored.chunks;
        node.size = stored.size;
        report.files_read += 1;
        Ok(())
    }
}

/// The next entry the walk found: from `batch`, or from the next batch once it is used up.
async fn next(
    found: &mut mpsc::Receiver<Vec<Found>>,
    batch: &mut std::vec::IntoIter<Found>,
) -> Option<Found> {
    loop {
        if let Some(item) = batch.next() {
            return Some(item);
        }
        *batch = found.recv().await?.into_iter();
    }
}

fn local(what: &str, error: &std::io::Error) -> RepositoryError {
    RepositoryError::Local(format!("{what}: {error}"))
}

/// The node of an entry, or why a tree cannot hold it.
fn node_of(path: RawPath, absolute: &Path, meta: &Metadata) -> Result<Node, String> {
    let file_type = meta.file_type();
    let (kind, target) = if file_type.is_dir() {
        (NodeKind::Dir, None)
    } else if file_type.is_file() {
        (NodeKind::File, None)
    } else if file_type.is_symlink() {
        match std::fs::read_link(absolute) {
            Ok(target) => (
                NodeKind::Symlink,
                Some(RawPath::from_os(target.as_os_str())),
            ),
            Err(e) => return Err(format!("{}: {e}", absolute.display())),
        }
    } else {
        return Err(format!(
            "{}: a device, socket or pipe: not backed up",
            absolute.display()
        ));
    };
    Ok(Node {
        path,
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: meta.mtime(),
        mtime_nsec: meta.mtime_nsec() as u32,
        ctime: meta.ctime(),
        ctime_nsec: meta.ctime_nsec() as u32,
        inode: meta.ino(),
        size: if kind == NodeKind::File {
            meta.size()
        } else {
            0
        },
        chunks: vec![],
        target,
    })
}

/// Directories read ahead of the walk (see [`ReadAhead`]), and the threads reading them.
const READ_AHEAD: usize = 16;
const READERS: usize = 8;

/// An entry the walk has found and not yet sent.
struct Pending {
    relative: Vec<u8>,
    entry: DirEntry,
    /// A directory's entries, once asked for.
    entries: Option<std::sync::mpsc::Receiver<DirEntries>>,
}

impl Pending {
    fn is_dir(&self) -> bool {
        self.entry.meta.as_ref().is_ok_and(Metadata::is_dir)
    }
}

/// Walks `root` depth first, entries sorted by name, sending each one (the root first, with
/// an empty relative path): files unchanged since `parent` with their chunks there, small
/// files that changed with their content. The next [`READ_AHEAD`] directories are read
/// ahead. Stops early when the receiver is gone.
fn walk(root: &Path, exclude: &PathPatterns, parent: &mut ParentListing, out: &mut Batches) {
    let root_text = root.to_string_lossy().into_owned();
    let readers = ReadAhead::new(READERS);
    let mut stack = vec![Pending {
        relative: Vec::new(),
        entry: DirEntry {
            name: Vec::new(),
            absolute: root.to_path_buf(),
            meta: std::fs::symlink_metadata(root),
        },
        entries: None,
    }];
    // Where the directories of `stack` are, in the same order: the last is the next one the
    // walk enters.
    let mut dirs: Vec<usize> = Vec::new();
    while let Some(pending) = stack.pop() {
        let is_dir = pending.is_dir();
        if is_dir && dirs.last() == Some(&stack.len()) {
            dirs.pop();
        }
        let Pending {
            relative,
            entry,
            entries,
        } = pending;
        let meta = match entry.meta {
            Ok(meta) => meta,
            Err(e) => {
                let problem = Found::Problem(format!("{}: {e}", entry.absolute.display()));
                if !out.send(problem) {
                    return;
                }
                continue;
            }
        };
        let dir = is_dir.then(|| entry.absolute.clone());
        if !out.send(found(relative.clone(), entry.absolute, &meta, parent)) {
            return;
        }
        let Some(absolute) = dir else { continue };
        let entries = match entries.map(|e| (e.try_recv(), e)) {
            Some((Ok(entries), _)) => entries,
            Some((Err(_), entries)) => {
                // The session works on what was found while the walk waits.
                if !out.flush() {
                    return;
                }
                entries
                    .recv()
                    .unwrap_or_else(|_| read_ahead::read_entries(&absolute))
            }
            None => read_ahead::read_entries(&absolute),
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => {
                let problem = Found::Problem(format!(
                    "{}: {e} (its entries are not backed up)",
                    absolute.display()
                ));
                if !out.send(problem) {
                    return;
                }
                continue;
            }
        };
        for entry in entries.into_iter().rev() {
            let child = if relative.is_empty() {
                entry.name.clone()
            } else {
                [relative.as_slice(), b"/", &entry.name].concat()
            };
            if !exclude.is_empty() && exclude.matches(&root_text, &String::from_utf8_lossy(&child))
            {
                continue;
            }
            let pending = Pending {
                relative: child,
                entry,
                entries: None,
            };
            if pending.is_dir() {
                dirs.push(stack.len());
            }
            stack.push(pending);
        }
        for &at in dirs.iter().rev().take(READ_AHEAD) {
            let next = &mut stack[at];
            if next.entries.is_none() {
                next.entries = Some(readers.read(&next.entry.absolute));
            }
        }
    }
}

/// What the walk sends for an entry whose metadata it has: its node, with the content of a
/// file unchanged since `parent` (its chunks there) or of a small file that changed.
fn found(
    relative: Vec<u8>,
    absolute: PathBuf,
    meta: &Metadata,
    parent: &mut ParentListing,
) -> Found {
    let node = match node_of(RawPath(relative), &absolute, meta) {
        Ok(node) => node,
        Err(problem) => return Found::Problem(problem),
    };
    let earlier = parent
        .take(&node.path)
        .filter(|earlier| node.unchanged_since(earlier));
    let content = match earlier {
        Some(earlier) => Content::Unchanged(earlier.chunks),
        // Unreadable here: the session tries again and reports it.
        None if node.kind == NodeKind::File && node.size <= SMALL_FILE => {
            std::fs::read(&absolute).map_or(Content::Unread, Content::Read)
        }
        None => Content::Unread,
    };
    let linked =
        (node.kind == NodeKind::File && meta.nlink() > 1).then(|| (meta.dev(), meta.ino()));
    Found::Entry {
        node,
        absolute,
        linked,
        content,
    }
}
