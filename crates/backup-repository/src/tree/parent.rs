//! The previous snapshot of a tree, read beside a new backup of it. Its listing is in walk
//! order, as the new walk is, so the two are read together like a merge: memory stays at one
//! node whatever the tree's size, and no map of every earlier file is built.

use super::restore::check_listing_size;
use super::{Node, RawPath, TreeContent};
use crate::index::Index;
use crate::repository::{Repository, RepositoryError};
use std::cmp::Ordering;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek};
use tokio_util::compat::TokioAsyncWriteCompatExt;

/// An earlier snapshot's listing of a tree, read forwards as a new walk of the same tree
/// asks for its paths in walk order. The default has no node. A listing out of order or
/// unreadable part-way ends early (with a warning in the log): the files it would have
/// vouched for are read again, never taken from a wrong node.
#[derive(Debug, Default)]
pub struct ParentListing {
    lines: Option<BufReader<File>>,
    /// The next node, read but not yet asked for.
    next: Option<Node>,
    /// The path of the node read last, to hold the listing to walk order.
    last: Option<RawPath>,
    line: Vec<u8>,
}

impl ParentListing {
    /// The node the listing has at `path`, if any. Paths must be asked for in walk order
    /// (each after the one before): nodes before `path` are passed over for good.
    pub fn take(&mut self, path: &RawPath) -> Option<Node> {
        loop {
            let next = match self.next.take() {
                Some(node) => node,
                None => self.read()?,
            };
            match walk_order(&next.path, path) {
                Ordering::Less => continue,
                Ordering::Equal => return Some(next),
                Ordering::Greater => {
                    self.next = Some(next);
                    return None;
                }
            }
        }
    }

    /// The next node of the listing, or `None` at its end (or where it stops being usable).
    fn read(&mut self) -> Option<Node> {
        let lines = self.lines.as_mut()?;
        self.line.clear();
        let node = match lines.read_until(b'\n', &mut self.line) {
            Ok(0) => None,
            Ok(_) => match serde_json::from_slice::<Node>(&self.line) {
                Ok(node) => Some(node),
                Err(e) => {
                    tracing::warn!(
                        "the previous snapshot's listing is damaged ({e}): files after this point are read again"
                    );
                    None
                }
            },
            Err(e) => {
                tracing::warn!(
                    "the previous snapshot's listing could not be read ({e}): files after this point are read again"
                );
                None
            }
        };
        let in_order = match (&node, &self.last) {
            (Some(node), Some(last)) => walk_order(last, &node.path) == Ordering::Less,
            _ => true,
        };
        if !in_order {
            tracing::warn!(
                "the previous snapshot's listing is out of order: files after this point are read again"
            );
        }
        match node.filter(|_| in_order) {
            Some(node) => {
                self.last = Some(node.path.clone());
                Some(node)
            }
            None => {
                self.lines = None;
                None
            }
        }
    }
}

/// The order of a walk that takes a directory's entries sorted by name, each directory
/// followed by what it holds: paths compared name by name.
pub(super) fn walk_order(a: &RawPath, b: &RawPath) -> Ordering {
    names(a).cmp(names(b))
}

/// The names of a path, none for the root's empty one.
fn names(path: &RawPath) -> impl Iterator<Item = &[u8]> {
    let bytes = path.0.as_slice();
    bytes
        .split(|b| *b == b'/')
        .filter(move |_| !bytes.is_empty())
}

impl Repository {
    /// An earlier snapshot of `tree`, to back the same tree up against: its listing is
    /// restored into an anonymous temporary file and read as the new walk goes.
    pub async fn parent_listing(
        &self,
        index: &Index,
        tree: &TreeContent,
    ) -> Result<ParentListing, RepositoryError> {
        check_listing_size(tree)?;
        let local = |e: std::io::Error| {
            RepositoryError::Local(format!("the previous listing of {}: {e}", tree.name))
        };
        let file = tempfile::tempfile().map_err(local)?;
        let mut writer = tokio::fs::File::from_std(file).compat_write();
        self.restore_stream(index, &tree.listing, &mut writer)
            .await?;
        let mut file = writer.into_inner().into_std().await;
        file.rewind().map_err(local)?;
        Ok(ParentListing {
            lines: Some(BufReader::with_capacity(256 * 1024, file)),
            ..ParentListing::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::NodeKind;
    use std::io::Write;

    fn path(text: &str) -> RawPath {
        RawPath(text.as_bytes().to_vec())
    }

    fn node(text: &str) -> Node {
        Node {
            path: path(text),
            kind: NodeKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1,
            mtime_nsec: 0,
            ctime: 1,
            ctime_nsec: 0,
            inode: 7,
            size: 1,
            chunks: vec![],
            target: None,
        }
    }

    fn listing(paths: &[&str], tail: &[u8]) -> ParentListing {
        let mut file = tempfile::tempfile().unwrap();
        for p in paths {
            serde_json::to_writer(&mut file, &node(p)).unwrap();
            file.write_all(b"\n").unwrap();
        }
        file.write_all(tail).unwrap();
        file.rewind().unwrap();
        ParentListing {
            lines: Some(BufReader::new(file)),
            ..ParentListing::default()
        }
    }

    #[test]
    fn walk_order_compares_name_by_name() {
        // "a-b" sorts after "a" and all it holds, though '-' is below '/'.
        let order = ["", "a", "a/b", "a/b/c", "a-b", "b"];
        for pair in order.windows(2) {
            assert_eq!(walk_order(&path(pair[0]), &path(pair[1])), Ordering::Less);
            assert_eq!(
                walk_order(&path(pair[1]), &path(pair[0])),
                Ordering::Greater
            );
        }
        assert_eq!(walk_order(&path("a/b"), &path("a/b")), Ordering::Equal);
    }

    #[test]
    fn nodes_are_found_as_the_walk_goes_and_missing_ones_are_none() {
        let mut parent = listing(&["", "a", "a/b", "a-b", "c"], b"");
        assert_eq!(parent.take(&path("")).unwrap().path, path(""));
        // "a" was removed since: passed over.
        assert_eq!(parent.take(&path("a/b")).unwrap().path, path("a/b"));
        assert!(parent.take(&path("a/new")).is_none());
        assert_eq!(parent.take(&path("a-b")).unwrap().path, path("a-b"));
        assert!(parent.take(&path("b")).is_none());
        assert_eq!(parent.take(&path("c")).unwrap().path, path("c"));
        assert!(parent.take(&path("d")).is_none());
        assert!(ParentListing::default().take(&path("")).is_none());
    }

    #[test]
    fn a_listing_out_of_order_or_damaged_ends_where_it_goes_wrong() {
        let mut parent = listing(&["", "b", "a"], b"");
        assert!(parent.take(&path("b")).is_some());
        assert!(parent.take(&path("c")).is_none());
        let mut damaged = listing(&["", "a"], b"{not json\n");
        assert!(damaged.take(&path("a")).is_some());
        assert!(damaged.take(&path("b")).is_none());
        let mut twice = listing(&["a", "a"], b"");
        assert!(twice.take(&path("a")).is_some());
        assert!(twice.take(&path("a")).is_none());
    }
}
