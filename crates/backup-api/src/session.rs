//! BackupSession: one run of a session of a configuration, made by its CronJob or on demand.

use crate::common::{Condition, ObjectRef};
use crate::hook::HookExecutionStatus;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One run of a configuration's session.
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kbackup.io",
    version = "v1alpha1",
    kind = "BackupSession",
    namespaced,
    status = "BackupSessionStatus",
    shortname = "bks",
    category = "kbackup",
    doc = "One run of a BackupConfiguration session, made by its CronJob or on demand.",
    label("app.kubernetes.io/part-of", "kbackup"),
    printcolumn = r#"{"name":"Invoker","type":"string","jsonPath":".spec.invoker.name"}"#,
    printcolumn = r#"{"name":"Session","type":"string","jsonPath":".spec.session"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Duration","type":"string","jsonPath":".status.duration"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BackupSessionSpec {
    /// The BackupConfiguration.
    pub invoker: ObjectRef,
    /// The session of it that runs.
    pub session: String,
    /// Retries left when this run fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_left: Option<u32>,
}

/// How a run went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupSessionStatus {
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BackupSessionPhase>,
    /// How long it took (`1m12s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Past it the run is failed and its work stopped (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// The Snapshot of each repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<SessionSnapshot>,
    /// The retention applied after it, per repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retention_policies: Vec<RetentionPolicyApplyStatus>,
    /// How its hooks went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<HookExecutionStatus>,
    /// Why it was skipped or failed, and its steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A run's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BackupSessionPhase {
    /// Not started.
    Pending,
    /// Its Jobs run.
    Running,
    /// Every snapshot succeeded.
    Succeeded,
    /// A snapshot failed, or the deadline passed.
    Failed,
    /// Not run (the configuration paused, or a session already running).
    Skipped,
}

/// A Snapshot a run made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionSnapshot {
    /// The Snapshot object.
    pub name: String,
    /// Its repository.
    pub repository: String,
    /// Its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

/// The retention applied to one repository after a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicyApplyStatus {
    /// The repository.
    pub repository: String,
    /// The RetentionPolicy.
    pub policy: ObjectRef,
    /// `Applied`, `FailedToApply`, or `NotApplied` (the backups are kept by what made them).
    pub phase: String,
    /// Snapshots removed.
    #[serde(default)]
    pub removed: u32,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it was not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
