//! RetentionPolicy: how many snapshots a repository keeps, applied after each session.

use crate::common::UsagePolicy;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which snapshots are kept (the newest successful one always is).
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "kbackup.io",
    version = "v1alpha1",
    kind = "RetentionPolicy",
    namespaced,
    shortname = "rp",
    category = "kbackup",
    doc = "Which snapshots a repository keeps after each session (the newest successful one always).",
    label("app.kubernetes.io/part-of", "kbackup"),
    printcolumn = r#"{"name":"Max-Retention-Period","type":"string","jsonPath":".spec.maxRetentionPeriod"}"#,
    printcolumn = r#"{"name":"Last","type":"integer","jsonPath":".spec.successfulSnapshots.last"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicySpec {
    /// Keep successful snapshots younger than this (`12h`, `30d`, `8w`, `6mo`, `1y`),
    /// counted from the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.matches('^[1-9][0-9]*(h|d|w|mo|y)$')").message("a number and one of h, d, w, mo, y"))]
    pub max_retention_period: Option<String>,
    /// Successful snapshots kept by count and by period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_snapshots: Option<SuccessfulSnapshotsKeep>,
    /// Failed snapshots kept (for diagnosis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_snapshots: Option<FailedSnapshotsKeep>,
    /// Which namespaces' configurations may use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_policy: Option<UsagePolicy>,
}

/// Successful snapshots kept: the newest `last`, and the newest of each of the last N hours,
/// days, weeks, months and years that have one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuccessfulSnapshotsKeep {
    /// The newest N.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub last: Option<u32>,
    /// One per hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub hourly: Option<u32>,
    /// One per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub daily: Option<u32>,
    /// One per ISO week.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub weekly: Option<u32>,
    /// One per month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub monthly: Option<u32>,
    /// One per year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub yearly: Option<u32>,
}

/// Failed snapshots kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedSnapshotsKeep {
    /// The newest N.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub last: Option<u32>,
}
