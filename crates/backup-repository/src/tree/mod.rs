//! File-tree components: a directory backed up with its metadata (modes, owners, times,
//! symlinks, hard links, empty and sparse files) and restored identical.
//!
//! A tree is stored as a *listing*: one JSON line per [`Node`], in walk order (a directory
//! before its entries, entries sorted by name), itself stored as a chunked stream, so an
//! unchanged listing deduplicates like any data. Each file node lists its content's chunks.

mod backup;
mod parent;
mod placement;
mod read_ahead;
mod restore;
mod verify;

pub use backup::{TreeBackupOptions, TreeBackupReport};
pub use parent::ParentListing;
pub use placement::{TreePlacement, place_trees};
pub use restore::{RestoreTarget, TreeRestoreOptions, TreeRestoreReport, parse_listing};
pub use verify::TreeVerification;

use crate::index::Index;
use crate::repository::{Repository, RepositoryError};
use crate::snapshot_file::SnapshotFile;
use crate::stream::StreamContent;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The engine name of tree components in snapshots.
pub const TREE_ENGINE: &str = "file-tree";

/// A tree component of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TreeContent {
    /// Component name: the absolute path that was backed up.
    pub name: String,
    /// The listing's chunks (JSON lines of [`Node`]s).
    pub listing: StreamContent,
    /// Regular files (hard links included).
    pub files: u64,
    /// Directories, the root included.
    pub dirs: u64,
    /// Bytes of file content.
    pub bytes: u64,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link (`target` is what it points to).
    Symlink,
    /// A further name of a file seen earlier (`target` is that file's path); its content is
    /// listed too, so it can be restored alone.
    Hardlink,
}

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// Path relative to the tree's root, `/`-separated; empty for the root itself.
    pub path: RawPath,
    /// What it is.
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Its nanoseconds.
    pub mtime_nsec: u32,
    /// Status change time (change detection only).
    pub ctime: i64,
    /// Its nanoseconds.
    pub ctime_nsec: u32,
    /// Inode number (change detection only).
    pub inode: u64,
    /// File size in bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// Content chunks (hex ids), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<String>,
    /// A symlink's target, or the earlier path of a hard-linked file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<RawPath>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Node {
    /// Whether a file's content can be taken from `earlier` without reading it: both regular
    /// files (a file's first name or a further one), same size, modification and change
    /// times, and inode.
    pub fn unchanged_since(&self, earlier: &Node) -> bool {
        let regular = |kind| matches!(kind, NodeKind::File | NodeKind::Hardlink);
        regular(self.kind)
            && regular(earlier.kind)
            && (
                self.size,
                self.mtime,
                self.mtime_nsec,
                self.ctime,
                self.ctime_nsec,
                self.inode,
            ) == (
                earlier.size,
                earlier.mtime,
                earlier.mtime_nsec,
                earlier.ctime,
                earlier.ctime_nsec,
                earlier.inode,
            )
    }
}

impl Repository {
    /// Every chunk a snapshot needs: its streams', its trees' listings' and their files'.
    pub async fn snapshot_chunks(
        &self,
        index: &Index,
        file: &SnapshotFile,
    ) -> Result<Vec<String>, RepositoryError> {
        let mut chunks: Vec<String> = file
            .streams
            .iter()
            .flat_map(|s| s.chunks.iter().cloned())
            .collect();
        for tree in &file.trees {
            chunks.extend(tree.listing.chunks.iter().cloned());
            for node in self.read_tree_listing(index, tree).await? {
                chunks.extend(node.chunks);
            }
        }
        Ok(chunks)
    }
}

/// A path as bytes (Unix names need not be UTF-8). Stored as a JSON string when it is
/// UTF-8, else as `{"hex": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RawPath(pub Vec<u8>);

impl RawPath {
    /// From an OS path or name.
    pub fn from_os(text: &OsStr) -> Self {
        Self(text.as_bytes().to_vec())
    }

    /// As an OS path.
    pub fn to_path(&self) -> PathBuf {
        PathBuf::from(OsStr::from_bytes(&self.0))
    }

    /// The directory part (empty at the top) and the last name: `a/b/c` -> (`a/b`, `c`).
    pub fn split_last(&self) -> (&[u8], &[u8]) {
        match self.0.iter().rposition(|b| *b == b'/') {
            Some(at) => (&self.0[..at], &self.0[at + 1..]),
            None => (&[], &self.0),
        }
    }

    /// For messages and glob matching (invalid UTF-8 replaced).
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum RawPathRepr {
    Text(String),
    Bytes { hex: String },
}

impl Serialize for RawPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => RawPathRepr::Text(text.to_owned()),
            Err(_) => RawPathRepr::Bytes {
                hex: hex::encode(&self.0),
            },
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self(match RawPathRepr::deserialize(d)? {
            RawPathRepr::Text(text) => text.into_bytes(),
            RawPathRepr::Bytes { hex } => hex::decode(hex).map_err(serde::de::Error::custom)?,
        }))
    }
}

/// Glob patterns over tree paths: a pattern matches an entry's path relative to the root
/// (`*` crosses `/`: `*.log` matches at any depth), or its absolute path. The default has
/// no pattern.
#[derive(Debug, Clone, Default)]
pub struct PathPatterns(globset::GlobSet);

impl PathPatterns {
    /// Compiles patterns; a bad pattern is refused with its text.
    pub fn new(patterns: &[String]) -> Result<Self, String> {
        let mut set = globset::GlobSetBuilder::new();
        for pattern in patterns {
            set.add(
                globset::Glob::new(pattern.trim_end_matches('/'))
                    .map_err(|e| format!("bad pattern {pattern:?}: {e}"))?,
            );
        }
        set.build().map(Self).map_err(|e| e.to_string())
    }

    /// Whether no pattern was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `relative` (under `root`) matches.
    pub fn matches(&self, root: &str, relative: &str) -> bool {
        self.0.is_match(relative)
            || self
                .0
                .is_match(format!("{}/{relative}", root.trim_end_matches('/')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_path_survives_the_listing(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let path = RawPath(bytes);
            let json = serde_json::to_string(&path).unwrap();
            prop_assert_eq!(serde_json::from_str::<RawPath>(&json).unwrap(), path);
        }
    }

    #[test]
    fn paths_split_into_directory_and_last_name() {
        let split = |p: &str| {
            let path = RawPath(p.as_bytes().to_vec());
            let (dir, name) = path.split_last();
            (dir.to_vec(), name.to_vec())
        };
        assert_eq!(split("a/b/c"), (b"a/b".to_vec(), b"c".to_vec()));
        assert_eq!(split("c"), (vec![], b"c".to_vec()));
    }

    #[test]
    fn utf8_paths_stay_readable_and_others_are_hex() {
        assert_eq!(
            serde_json::to_string(&RawPath(b"dir/a b.txt".to_vec())).unwrap(),
            r#""dir/a b.txt""#
        );
        assert_eq!(
            serde_json::to_string(&RawPath(vec![b'x', 0xff])).unwrap(),
            r#"{"hex":"78ff"}"#
        );
    }

    #[test]
    fn patterns_match_relative_and_absolute_paths() {
        let patterns =
            PathPatterns::new(&["*.log".into(), "cache".into(), "/data/tmp/".into()]).unwrap();
        assert!(patterns.matches("/data", "app/x.log"));
        assert!(patterns.matches("/data", "cache"));
        assert!(!patterns.matches("/data", "app/cache-keep"));
        assert!(patterns.matches("/data/", "tmp"));
        assert!(!patterns.matches("/data", "tmpfile"));
        assert!(PathPatterns::new(&["a[".into()]).is_err());
    }
}
