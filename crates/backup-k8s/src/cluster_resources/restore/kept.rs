//! The slots a restore keeps once every record is taken: cluster-scoped objects only when
//! the namespaced ones need them, renumbered, with the index of their keys and their
//! dependency graph.

use super::fingerprint::Fingerprint;
use super::slot::Slot;
use backup_core::resources::DependencyGraph;
use std::collections::{HashMap, HashSet};

/// The slots a restore keeps (cluster-scoped objects only when needed), renumbered, with the
/// index of their keys and their dependency graph.
pub(super) struct Kept {
    pub(super) slots: Vec<Slot>,
    pub(super) index: Renumbering,
    pub(super) graph: DependencyGraph,
}

/// Old slot numbers to new ones, and keys to new numbers.
pub(super) struct Renumbering {
    new: Vec<Option<u32>>,
    /// Keys to new numbers.
    pub(super) of: HashMap<Fingerprint, u32>,
}

impl Renumbering {
    /// The new number of old slot `i`, if it is kept.
    pub(super) fn kept(&self, i: usize) -> Option<usize> {
        self.new[i].map(|n| n as usize)
    }
}

impl Kept {
    /// Keeps the slots whose conditional keys are needed and renumbers them.
    pub(super) fn select(
        slots: Vec<Slot>,
        keys: &[Fingerprint],
        dependencies: &[Fingerprint],
        dependency_ends: &[usize],
        conditional: &[(usize, Fingerprint)],
        needs: &HashSet<Fingerprint>,
    ) -> Self {
        let mut kept = vec![true; slots.len()];
        for (i, key) in conditional {
            kept[*i] = needs.contains(key);
        }
        let mut count = 0u32;
        let new: Vec<Option<u32>> = kept
            .iter()
            .map(|&k| {
                k.then(|| {
                    count += 1;
                    count - 1
                })
            })
            .collect();
        let of: HashMap<Fingerprint, u32> = keys
            .iter()
            .zip(&new)
            .filter_map(|(key, n)| n.map(|n| (*key, n)))
            .collect();
        let mut graph = DependencyGraph::default();
        let mut start = 0;
        for (&end, n) in dependency_ends.iter().zip(&new) {
            if n.is_some() {
                graph.push(
                    dependencies[start..end]
                        .iter()
                        .filter_map(|d| of.get(d).copied()),
                );
            }
            start = end;
        }
        let slots = slots
            .into_iter()
            .zip(&kept)
            .filter_map(|(slot, &k)| k.then_some(slot))
            .collect();
        Self {
            slots,
            index: Renumbering { new, of },
            graph,
        }
    }
}
