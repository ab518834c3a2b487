//! Values met again and again (types, namespaces), each kept once and named by an index.

use std::collections::HashMap;

/// Strings met again and again (types, namespaces), each kept once and named by an index.
pub(super) struct Interned<T> {
    /// The values, by index.
    pub(super) values: Vec<T>,
    index: HashMap<T, u32>,
}

impl<T: Clone + Eq + std::hash::Hash> Interned<T> {
    pub(super) fn new() -> Self {
        Self {
            values: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// The index of `value`, given a new one when it is new.
    pub(super) fn index_of(&mut self, value: &T) -> u32 {
        if let Some(&i) = self.index.get(value) {
            return i;
        }
        let i = u32::try_from(self.values.len()).expect("fewer than 4 billion distinct values");
        self.values.push(value.clone());
        self.index.insert(value.clone(), i);
        i
    }
}
