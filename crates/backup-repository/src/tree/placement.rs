//! Where the trees of one snapshot are restored below a target: each at its name (the
//! absolute path it was backed up from) taken as a path below the target. Names are checked
//! like listing paths, and a tree nested in another restores its own part of it.

use super::restore::inside;
use super::{RawPath, TreeContent};
use crate::repository::RepositoryError;

/// A tree, the place below the target it is restored to, and the paths inside it that
/// other trees of the snapshot restore (left out of this one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreePlacement<'a> {
    /// The tree.
    pub tree: &'a TreeContent,
    /// Its place below the target (empty: the target itself).
    pub place: RawPath,
    /// Paths inside the tree, relative to its root, that nested trees restore.
    pub skip: Vec<RawPath>,
}

/// Places every tree of a snapshot below one target, nested trees first (so that the tree
/// around them finds their directories made and stamps them last). A name that is not a
/// plain absolute path (`..`, `.`, empty names) or that two trees share is refused.
pub fn place_trees(trees: &[TreeContent]) -> Result<Vec<TreePlacement<'_>>, RepositoryError> {
    let mut places: Vec<(&TreeContent, RawPath)> = Vec::with_capacity(trees.len());
    for tree in trees {
        let place = place_of(&tree.name).ok_or_else(|| {
            RepositoryError::Corrupt(format!(
                "tree component {:?}: not a plain absolute path",
                tree.name
            ))
        })?;
        if places.iter().any(|(_, p)| *p == place) {
            return Err(RepositoryError::Corrupt(format!(
                "two tree components restore to {:?}",
                tree.name
            )));
        }
        places.push((tree, place));
    }
    let mut placed: Vec<TreePlacement<'_>> = places
        .iter()
        .map(|(tree, place)| TreePlacement {
            tree,
            place: place.clone(),
            skip: places
                .iter()
                .filter_map(|(_, other)| below(other, place))
                .collect(),
        })
        .collect();
    placed.sort_by_key(|p| std::cmp::Reverse(depth(&p.place)));
    Ok(placed)
}

/// `/a/b` -> `a/b`, `/` -> the empty path; `None` unless absolute with plain names.
fn place_of(name: &str) -> Option<RawPath> {
    let relative = name.strip_prefix('/')?;
    let relative = relative.strip_suffix('/').unwrap_or(relative);
    let place = RawPath(relative.as_bytes().to_vec());
    inside(&place).then_some(place)
}

/// `path` relative to `root` when strictly below it.
fn below(path: &RawPath, root: &RawPath) -> Option<RawPath> {
    if root.0.is_empty() {
        return (!path.0.is_empty()).then(|| path.clone());
    }
    let rest = path.0.strip_prefix(root.0.as_slice())?;
    let rest = rest.strip_prefix(b"/")?;
    Some(RawPath(rest.to_vec()))
}

fn depth(place: &RawPath) -> usize {
    if place.0.is_empty() {
        0
    } else {
        1 + place.0.iter().filter(|b| **b == b'/').count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::StreamContent;

    fn tree(name: &str) -> TreeContent {
        TreeContent {
            name: name.into(),
            listing: StreamContent {
                name: "listing".into(),
                size: 0,
                chunks: vec![],
            },
            files: 0,
            dirs: 0,
            bytes: 0,
        }
    }

    fn raw(text: &str) -> RawPath {
        RawPath(text.as_bytes().to_vec())
    }

    #[test]
    fn nested_trees_come_first_and_are_left_out_of_the_trees_around_them() {
        let trees = [tree("/data"), tree("/data/sub/inner"), tree("/other/")];
        let placed = place_trees(&trees).unwrap();
        let shape: Vec<(&str, RawPath, Vec<RawPath>)> = placed
            .iter()
            .map(|p| (p.tree.name.as_str(), p.place.clone(), p.skip.clone()))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("/data/sub/inner", raw("data/sub/inner"), vec![]),
                ("/data", raw("data"), vec![raw("sub/inner")]),
                ("/other/", raw("other"), vec![]),
            ]
        );
        let root = [tree("/"), tree("/etc")];
        assert_eq!(place_trees(&root).unwrap()[1].skip, vec![raw("etc")]);
    }

    #[test]
    fn names_leaving_the_target_or_shared_are_refused() {
        for name in ["/data/../../etc", "data", "/a//b", "/a/./b", "/.."] {
            let error = place_trees(&[tree(name)]).unwrap_err();
            assert!(
                error.to_string().contains("plain absolute path"),
                "{name}: {error}"
            );
        }
        let error = place_trees(&[tree("/a"), tree("/a/")]).unwrap_err();
        assert!(error.to_string().contains("two tree components"), "{error}");
        assert!(below(&raw("datax"), &raw("data")).is_none());
    }
}
