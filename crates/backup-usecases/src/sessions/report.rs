//! What a session's Job reports of one repository: the snapshot it wrote, its components and
//! the retention applied after it. The Job hands it over as its container's termination
//! message, which the kubelet cuts at 4 KiB: [`SessionReport::message`] keeps it within.

use backup_api::{ComponentStatus, SnapshotPhase};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most bytes of a termination message (the kubelet keeps 4096).
pub const MESSAGE_LIMIT: usize = 4000;

/// One repository's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionReport {
    /// Succeeded, or Failed (some component failed, or nothing was written).
    pub phase: Option<SnapshotPhase>,
    /// The snapshot written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// When it was taken (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_time: Option<String>,
    /// Its components (the failed ones first when the message had to be cut).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, ComponentStatus>,
    /// How many components it has.
    #[serde(default)]
    pub total_components: u32,
    /// Bytes it added to the repository (`12.5 MiB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Why nothing, or not everything, was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The retention applied after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionOutcome>,
    /// Snapshots in the repository afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_count: Option<u64>,
    /// Whether the repository's structure checked out afterwards (every snapshot's data
    /// indexed, every indexed pack present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<bool>,
    /// Bytes the repository holds afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_size: Option<u64>,
}

/// What the retention policy removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionOutcome {
    /// The snapshots removed, by short id (8 hex digits).
    #[serde(default)]
    pub removed: Vec<String>,
    /// Why applying it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it was not applied at all (what made the backups keeps them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_applied: Option<String>,
}

impl SessionReport {
    /// A report of a run that wrote nothing.
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            phase: Some(SnapshotPhase::Failed),
            error: Some(error.into()),
            ..Self::default()
        }
    }

    /// The report as one line of JSON of at most [`MESSAGE_LIMIT`] bytes: the error is cut
    /// to 1000 bytes, then succeeded components are dropped, then the removed snapshots
    /// listed, then failed components, then the error cut further; `totalComponents` still
    /// counts them all.
    pub fn message(&self) -> String {
        let mut report = self.clone();
        if let Some(error) = &mut report.error {
            cut(error, 1000);
        }
        loop {
            let text = serde_json::to_string(&report).unwrap_or_default();
            if text.len() <= MESSAGE_LIMIT {
                return text;
            }
            let succeeded = report
                .components
                .iter()
                .find(|(_, c)| c.phase == "Succeeded")
                .map(|(name, _)| name.clone());
            let removed = report.retention.as_mut().filter(|r| !r.removed.is_empty());
            if let Some(name) = succeeded {
                report.components.remove(&name);
            } else if let Some(retention) = removed {
                retention.removed.truncate(retention.removed.len() / 2);
            } else if let Some(name) = report.components.keys().next().cloned() {
                report.components.remove(&name);
            } else if let Some(error) = &mut report.error {
                cut(error, error.len() / 2);
            } else {
                return text;
            }
        }
    }

    /// Why it failed, for a person: its error, else its failed components and theirs.
    pub fn failure(&self) -> String {
        if let Some(error) = &self.error {
            return error.clone();
        }
        let failed: Vec<String> = self
            .components
            .iter()
            .filter(|(_, c)| c.phase != "Succeeded")
            .map(|(name, c)| match &c.error {
                Some(error) => format!("{name} {}: {error}", c.phase),
                None => format!("{name} {}", c.phase),
            })
            .collect();
        match failed.is_empty() {
            true => "failed".into(),
            false => failed.join("; "),
        }
    }

    /// Reads a termination message; `None` when it is not a report (a crash's log tail).
    pub fn parse(message: &str) -> Option<Self> {
        let report: Self = serde_json::from_str(message.trim()).ok()?;
        report.phase.is_some().then_some(report)
    }
}

/// `text` cut to at most `max` bytes (at a character boundary), ending with `…` when cut.
fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        text.truncate(boundary_at_most(text, max));
        text.push('…');
    }
}

/// The largest character boundary of `text` at or below `max`.
pub(crate) fn boundary_at_most(text: &str, max: usize) -> usize {
    (0..=max.min(text.len()))
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(phase: &str, error: Option<String>) -> ComponentStatus {
        ComponentStatus {
            phase: phase.into(),
            duration: Some("1.2s".into()),
            size: Some("1 KiB".into()),
            error,
        }
    }

    #[test]
    fn a_long_report_keeps_its_failures_and_fits_a_termination_message() {
        let mut report = SessionReport {
            phase: Some(SnapshotPhase::Failed),
            snapshot_id: Some("ab".repeat(32)),
            total_components: 301,
            error: Some("x".repeat(9000)),
            ..SessionReport::default()
        };
        for n in 0..300 {
            report
                .components
                .insert(format!("volume-{n}"), component("Succeeded", None));
        }
        report.components.insert(
            "volume-bad".into(),
            component("Failed", Some("mover failed".into())),
        );
        let message = report.message();
        assert!(message.len() <= MESSAGE_LIMIT, "{}", message.len());
        let read = SessionReport::parse(&message).expect("a report");
        assert_eq!(read.total_components, 301);
        assert!(read.components.contains_key("volume-bad"), "{message}");
        assert_eq!(read.snapshot_id, report.snapshot_id);
        assert!(SessionReport::parse("panicked at main.rs").is_none());
        let short = SessionReport::failed("no storage");
        assert_eq!(SessionReport::parse(&short.message()), Some(short));
    }
}
