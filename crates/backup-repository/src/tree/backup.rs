//! Backing up a directory tree into a [`BackupSession`].

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
        let (sender, mut found) = mpsc::channel(256);
        let walker = {
            let (root, exclude, mut parent) = (root.to_path_buf(), options.exclude, options.parent);
            tokio::task::spawn_blocking(move || walk(&root, &exclude, &mut parent, &sender))
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
        while let Some(item) = found.recv().await {
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

/// Walks `root` depth first, entries sorted by name, sending each one (the root first, with
/// an empty relative path): files unchanged since `parent` with their chunks there, small
/// files that changed with their content. Stops early when the receiver is gone.
fn walk(
    root: &Path,
    exclude: &PathPatterns,
    parent: &mut ParentListing,
    sender: &mpsc::Sender<Found>,
) {
    let root_text = root.to_string_lossy().into_owned();
    let mut stack = vec![(root.to_path_buf(), Vec::<u8>::new())];
    while let Some((absolute, relative)) = stack.pop() {
        let meta = match std::fs::symlink_metadata(&absolute) {
            Ok(meta) => meta,
            Err(e) => {
                if sender
                    .blocking_send(Found::Problem(format!("{}: {e}", absolute.display())))
                    .is_err()
                {
                    return;
                }
                continue;
            }
        };
        let is_dir = meta.is_dir();
        let entry = match node_of(RawPath(relative.clone()), &absolute, &meta) {
            Ok(node) => {
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
                let linked = (node.kind == NodeKind::File && meta.nlink() > 1)
                    .then(|| (meta.dev(), meta.ino()));
                Found::Entry {
                    node,
                    absolute: absolute.clone(),
                    linked,
                    content,
                }
            }
            Err(problem) => Found::Problem(problem),
        };
        if sender.blocking_send(entry).is_err() {
            return;
        }
        if !is_dir {
            continue;
        }
        let mut children: Vec<(Vec<u8>, PathBuf)> = match std::fs::read_dir(&absolute) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| (RawPath::from_os(&e.file_name()).0, e.path()))
                .collect(),
            Err(e) => {
                if sender
                    .blocking_send(Found::Problem(format!(
                        "{}: {e} (its entries are not backed up)",
                        absolute.display()
                    )))
                    .is_err()
                {
                    return;
                }
                continue;
            }
        };
        children.sort();
        for (name, path) in children.into_iter().rev() {
            let child = if relative.is_empty() {
                name
            } else {
                [relative.as_slice(), b"/", &name].concat()
            };
            if !exclude.is_empty() && exclude.matches(&root_text, &String::from_utf8_lossy(&child))
            {
                continue;
            }
            stack.push((path, child));
        }
    }
}
