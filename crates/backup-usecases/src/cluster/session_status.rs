//! What a cluster restore did, shaped like a KubeStash RestoreSession's status: what the CLI
//! prints as JSON or YAML and what an operator writes to its custom resource.

use super::MANIFESTS;
use backup_core::model::{ItemIssue, Phase};
use backup_k8s::cluster_resources::{KindCounts, RestoreOutcome};
use serde::Serialize;
use std::collections::BTreeMap;

/// A RestoreSession status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSessionStatus {
    /// The restore's phase.
    pub phase: Phase,
    /// How long it took (`1.234s`).
    pub duration: String,
    /// Components restored (the manifests).
    pub total_components: usize,
    /// Each component's outcome.
    pub components: BTreeMap<String, ComponentStatus>,
    /// The plan and the restore, as conditions.
    pub conditions: Vec<Condition>,
    /// Objects per kind by outcome.
    pub kinds: BTreeMap<String, KindCounts>,
    /// Every warning and error.
    pub issues: Vec<ItemIssue>,
}

/// One component's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentStatus {
    /// Its phase.
    pub phase: Phase,
    /// How long it took.
    pub duration: String,
    /// Objects by outcome.
    pub counts: KindCounts,
}

/// A Kubernetes condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `PlanReady`, `ObjectsRestored`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `True` or `False`.
    pub status: String,
    /// A CamelCase reason.
    pub reason: String,
    /// For people.
    pub message: String,
    /// RFC 3339, seconds.
    pub last_transition_time: String,
}

impl RestoreSessionStatus {
    /// The status of a restore of `objects` objects in `waves` waves that ended with
    /// `outcome`, at `now` (RFC 3339).
    pub fn of(outcome: &RestoreOutcome, objects: usize, waves: usize, now: &str) -> Self {
        let phase = outcome.report.phase();
        let duration = format!("{:.3}s", outcome.duration.as_secs_f64());
        let totals = outcome.totals();
        let (status, reason) = match phase {
            Phase::Succeeded => ("True", "AllObjectsRestored"),
            Phase::PartiallyFailed => ("False", "SomeObjectsFailed"),
            _ => ("False", "ObjectsFailed"),
        };
        let condition = |kind: &str, status: &str, reason: &str, message: String| Condition {
            kind: kind.into(),
            status: status.into(),
            reason: reason.into(),
            message,
            last_transition_time: now.into(),
        };
        Self {
            phase,
            duration: duration.clone(),
            total_components: 1,
            components: [(
                MANIFESTS.to_owned(),
                ComponentStatus {
                    phase,
                    duration,
                    counts: totals,
                },
            )]
            .into(),
            conditions: vec![
                condition(
                    "PlanReady",
                    "True",
                    "PlanComputed",
                    format!("{objects} objects in {waves} dependency waves"),
                ),
                condition(
                    "ObjectsRestored",
                    status,
                    reason,
                    format!(
                        "{} created, {} updated, {} unchanged, {} skipped, {} failed",
                        totals.created,
                        totals.updated,
                        totals.unchanged,
                        totals.skipped,
                        totals.failed
                    ),
                ),
            ],
            kinds: outcome.kinds.clone(),
            issues: outcome.report.issues.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::model::Report;
    use std::time::Duration;

    #[test]
    fn a_partial_restore_reads_as_a_restore_session_status() {
        let mut report = Report {
            succeeded: 2,
            ..Report::default()
        };
        report.error("ConfigMap shop/conf", "refused");
        let outcome = RestoreOutcome {
            kinds: [(
                "ConfigMap".to_owned(),
                KindCounts {
                    created: 2,
                    failed: 1,
                    ..KindCounts::default()
                },
            )]
            .into(),
            report,
            duration: Duration::from_millis(1500),
        };
        let status = RestoreSessionStatus::of(&outcome, 3, 2, "2026-11-30T12:00:00Z");
        assert_eq!(status.phase, Phase::PartiallyFailed);
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["duration"], "1.500s");
        assert_eq!(json["totalComponents"], 1);
        assert_eq!(json["components"][MANIFESTS]["counts"]["failed"], 1);
        assert_eq!(
            json["conditions"][0]["message"],
            "3 objects in 2 dependency waves"
        );
        assert_eq!(json["conditions"][1]["type"], "ObjectsRestored");
        assert_eq!(json["conditions"][1]["reason"], "SomeObjectsFailed");
        assert_eq!(
            json["conditions"][1]["lastTransitionTime"],
            "2026-11-30T12:00:00Z"
        );
        assert_eq!(json["issues"][0]["message"], "refused");
    }
}
