//! Reading a restored tree back and comparing it with the snapshot: every file's content
//! chunk by chunk (each chunk's length from the index, its keyed hash computed again from
//! what is on disk), its size, each directory and each symbolic link's target. Nothing is
//! followed if a link, nothing is written.

use super::{NodeKind, RawPath, RestoreTarget, TreeContent};
use crate::crypto::{ChunkId, MasterKey};
use crate::index::{Index, parse_id};
use crate::repository::{Repository, RepositoryError};
use std::io::Read;

/// Differences named in a verification (the rest are counted).
const MAX_LISTED: usize = 20;

/// What a read-back found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeVerification {
    /// Files read back.
    pub files: u64,
    /// Bytes read back.
    pub bytes: u64,
    /// How many entries differ from the snapshot.
    pub difference_count: u64,
    /// The first of them, each `path: how`.
    pub differences: Vec<String>,
}

impl TreeVerification {
    fn differs(&mut self, path: &RawPath, how: impl std::fmt::Display) {
        self.difference_count += 1;
        if self.differences.len() < MAX_LISTED {
            self.differences.push(format!("{}: {how}", path.display()));
        }
    }
}

/// An entry to compare, its chunks resolved to their lengths.
enum Expected {
    Dir,
    File {
        size: u64,
        chunks: Vec<(ChunkId, u32)>,
    },
    Symlink(Vec<u8>),
}

impl Repository {
    /// Compares the tree as restored below `target` with `tree` of the snapshot; the
    /// differences found (an error only when the snapshot's listing cannot be read).
    pub async fn verify_tree(
        &self,
        index: &Index,
        tree: &TreeContent,
        target: &RestoreTarget,
    ) -> Result<TreeVerification, RepositoryError> {
        let nodes = self.read_tree_listing(index, tree).await?;
        let mut expected = Vec::with_capacity(nodes.len());
        for node in nodes {
            let entry = match node.kind {
                NodeKind::Dir => Expected::Dir,
                NodeKind::Symlink => {
                    Expected::Symlink(node.target.map(|t| t.0).unwrap_or_default())
                }
                NodeKind::File | NodeKind::Hardlink => {
                    let mut chunks = Vec::with_capacity(node.chunks.len());
                    for id in &node.chunks {
                        let id = parse_id(id)?;
                        let (_, location) = index.require(&id)?;
                        chunks.push((id, location.plain_length));
                    }
                    Expected::File {
                        size: node.size,
                        chunks,
                    }
                }
            };
            expected.push((node.path, entry));
        }
        let key = self.key().clone();
        let target = target.clone();
        tokio::task::spawn_blocking(move || compare(&key, &target, expected))
            .await
            .map_err(|e| RepositoryError::Corrupt(format!("verification stopped: {e}")))
    }
}

fn compare(
    key: &MasterKey,
    target: &RestoreTarget,
    expected: Vec<(RawPath, Expected)>,
) -> TreeVerification {
    let mut found = TreeVerification::default();
    for (path, entry) in expected {
        match entry {
            Expected::Dir => {
                if let Err(error) = target.open_dir(&path) {
                    found.differs(&path, format_args!("directory not there ({error})"));
                }
            }
            Expected::Symlink(wanted) => match target.read_link(&path) {
                Ok(link) if link == wanted => {}
                Ok(_) => found.differs(&path, "symbolic link points elsewhere"),
                Err(error) => {
                    found.differs(&path, format_args!("symbolic link not there ({error})"))
                }
            },
            Expected::File { size, chunks } => {
                if let Err(how) = compare_file(key, target, &path, size, &chunks, &mut found) {
                    found.differs(&path, how);
                }
            }
        }
    }
    found
}

/// Reads one file back; how it differs.
fn compare_file(
    key: &MasterKey,
    target: &RestoreTarget,
    path: &RawPath,
    size: u64,
    chunks: &[(ChunkId, u32)],
    found: &mut TreeVerification,
) -> Result<(), String> {
    let mut file = target
        .open_read(path)
        .map_err(|e| format!("file not there ({e})"))?;
    let metadata = file.metadata().map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err("not a regular file".into());
    }
    if metadata.len() != size {
        return Err(format!("{} bytes, the snapshot has {size}", metadata.len()));
    }
    found.files += 1;
    let mut buffer = Vec::new();
    let mut offset = 0u64;
    for (id, length) in chunks {
        buffer.resize(*length as usize, 0);
        file.read_exact(&mut buffer)
            .map_err(|e| format!("unreadable at byte {offset} ({e})"))?;
        found.bytes += u64::from(*length);
        if key.chunk_id(&buffer) != *id {
            return Err(format!(
                "content differs from the snapshot at bytes {offset}..{}",
                offset + u64::from(*length)
            ));
        }
        offset += u64::from(*length);
    }
    Ok(())
}
