//! Objects' keys reduced to 128 bits, so that a plan of 100,000 objects holds 16 bytes per
//! key instead of the key's strings.

use backup_core::resources::{ManifestRecord, ObjectKey};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// An object's key as 128 bits of a hash keyed afresh for each restore: objects named to
/// collide in one restore do not collide in the next, and two of 100,000 keys meet by chance
/// about once in 10^28 restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Fingerprint(u64, u64);

/// Makes the fingerprints of one restore.
pub(super) struct Fingerprinter {
    keys: RandomState,
}

impl Fingerprinter {
    /// A fingerprinter with a random key.
    pub(super) fn new() -> Self {
        Self {
            keys: RandomState::new(),
        }
    }

    /// The fingerprint of a key given by its parts.
    pub(super) fn of(
        &self,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Fingerprint {
        let half = |domain: u8| self.keys.hash_one((domain, group, kind, namespace, name));
        Fingerprint(half(0), half(1))
    }

    /// The fingerprint of a key.
    pub(super) fn of_key(&self, key: &ObjectKey) -> Fingerprint {
        self.of(&key.group, &key.kind, key.namespace.as_deref(), &key.name)
    }

    /// The fingerprint of a record's key.
    pub(super) fn of_record(&self, record: &ManifestRecord) -> Fingerprint {
        self.of(
            &record.group,
            &record.kind,
            record.namespace.as_deref(),
            &record.name,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_meet_and_different_ones_do_not() {
        let fingerprints = Fingerprinter::new();
        let key = ObjectKey::new("apps", "Deployment", Some("a"), "web");
        assert_eq!(
            fingerprints.of_key(&key),
            fingerprints.of("apps", "Deployment", Some("a"), "web")
        );
        // Parts do not run into each other.
        assert_ne!(
            fingerprints.of("", "ConfigMap", Some("ab"), "c"),
            fingerprints.of("", "ConfigMap", Some("a"), "bc")
        );
        assert_ne!(
            fingerprints.of("", "Namespace", None, "a"),
            fingerprints.of("", "Namespace", Some(""), "a")
        );
        // Another restore, another key.
        assert_ne!(Fingerprinter::new().of_key(&key), fingerprints.of_key(&key));
    }
}
