use super::{Component, Phase};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A snapshot's identifier: lowercase hex, at least 8 characters (the repository derives it
/// from the snapshot's content; the first 8 characters are the short form people type).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SnapshotId(String);

impl SnapshotId {
    /// Validates an identifier.
    pub fn parse(text: &str) -> Result<Self, String> {
        let valid = text.len() >= 8
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "invalid snapshot id '{text}': expected at least 8 lowercase hex characters"
            ))
        }
    }

    /// The 8-character short form.
    pub fn short(&self) -> &str {
        &self.0[..8]
    }

    /// The full identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SnapshotId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SnapshotId> for String {
    fn from(id: SnapshotId) -> Self {
        id.0
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Sums over a snapshot's components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Items (files, objects, resources) stored.
    pub items: u64,
    /// Bytes before deduplication and compression.
    pub bytes: u64,
    /// Bytes newly added to the repository by this snapshot.
    pub added_bytes: u64,
}

/// A point-in-time backup made of components, with the metadata that retention and
/// `latest` resolution work on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Its identifier.
    pub id: SnapshotId,
    /// When it was taken.
    pub time: DateTime<Utc>,
    /// The cluster (or host) it was taken from.
    pub source: String,
    /// Free-form tags (`--tag`).
    #[serde(default)]
    pub tags: BTreeSet<String>,
    /// Key/value labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its parts.
    pub components: Vec<Component>,
    /// Sums over the components.
    #[serde(default)]
    pub totals: Totals,
}

impl Snapshot {
    /// The snapshot's phase, derived from its components (so the two can never disagree).
    pub fn phase(&self) -> Phase {
        Phase::combine(self.components.iter().map(|c| c.phase))
    }

    /// Whether it can be restored in full.
    pub fn is_successful(&self) -> bool {
        self.phase() == Phase::Succeeded
    }

    /// The component of that name.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// Whether it carries every tag and label asked for.
    pub fn matches(&self, tags: &[String], labels: &BTreeMap<String, String>) -> bool {
        tags.iter().all(|t| self.tags.contains(t))
            && labels.iter().all(|(k, v)| self.labels.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn snapshot(components: Vec<Component>) -> Snapshot {
        Snapshot {
            id: SnapshotId::parse("0123456789abcdef").unwrap(),
            time: "2026-11-21T03:00:00Z".parse().unwrap(),
            source: "prod".into(),
            tags: ["daily".to_string()].into(),
            labels: [("app".to_string(), "stackstate".to_string())].into(),
            components,
            totals: Totals::default(),
        }
    }

    #[test]
    fn ids_are_validated() {
        assert!(SnapshotId::parse("0123abcd").is_ok());
        assert!(SnapshotId::parse("0123abc").is_err());
        assert!(SnapshotId::parse("0123ABCD").is_err());
        assert!(serde_json::from_str::<SnapshotId>("\"zzzzzzzz\"").is_err());
        assert_eq!(SnapshotId::parse("0123456789").unwrap().short(), "01234567");
    }

    #[test]
    fn phase_is_derived_from_components() {
        let ok = Component::new("a", "e").succeeded(1, Duration::ZERO);
        let bad = Component::new("b", "e").failed("x", Duration::ZERO);
        assert!(snapshot(vec![ok.clone()]).is_successful());
        assert_eq!(snapshot(vec![ok, bad]).phase(), Phase::PartiallyFailed);
    }

    #[test]
    fn filters_by_tags_and_labels() {
        let s = snapshot(vec![]);
        let app = |v: &str| [("app".to_string(), v.to_string())].into();
        assert!(s.matches(&["daily".into()], &app("stackstate")));
        assert!(!s.matches(&["weekly".into()], &BTreeMap::new()));
        assert!(!s.matches(&[], &app("other")));
    }
}
