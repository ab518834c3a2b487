//! BackupConfiguration: what is backed up, into which repositories, on which schedule.

use crate::common::{Condition, ObjectRef, SecretRef, TypedObjectRef};
use crate::hook::BackupHooks;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A backup to take on a schedule: its target, backends and sessions.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "kbackup.io",
    version = "v1alpha1",
    kind = "BackupConfiguration",
    namespaced,
    status = "BackupConfigurationStatus",
    shortname = "bc",
    category = "kbackup",
    doc = "What is backed up, into which repositories, on which schedule.",
    label("app.kubernetes.io/part-of", "kbackup"),
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Paused","type":"boolean","jsonPath":".spec.paused"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BackupConfigurationSpec {
    /// What is backed up: a Namespace (its manifests), a workload (its volumes), or a
    /// StackState installation's Deployment (its data stores). The tasks say what of it.
    pub target: TypedObjectRef,
    /// Where the snapshots go: each a storage and the retention applied in it, by name.
    #[schemars(length(min = 1, max = 8), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub backends: Vec<BackendReference>,
    /// The sessions, by name: each a schedule, its repositories and its tasks.
    #[schemars(length(min = 1, max = 16), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub sessions: Vec<SessionConfig>,
    /// No new session starts while true (one running goes on).
    #[serde(default)]
    pub paused: bool,
}

/// A backend: a storage and the retention policy applied to its repositories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendReference {
    /// Its name in this configuration.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// The BackupStorage.
    pub storage_ref: ObjectRef,
    /// The RetentionPolicy.
    pub retention_policy: ObjectRef,
}

/// A session: when, into which repositories, doing what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionConfig {
    /// Its name (BackupSessions are named after the configuration, it and the time).
    #[schemars(length(min = 1, max = 30))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')").message("a DNS label"))]
    pub name: String,
    /// When it runs.
    pub scheduler: Scheduler,
    /// The repositories its snapshots go to (one per backend at most).
    #[schemars(length(min = 1, max = 8))]
    pub repositories: Vec<RepositoryInfo>,
    /// What it does.
    #[schemars(length(min = 1, max = 16))]
    pub tasks: Vec<BackupTask>,
    /// Retries of a failed session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_config: Option<RetryConfig>,
    /// How long a session may run before it is failed and its work stopped (`30m`, `2h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(s|m|h))+$')").message("a duration such as 90s, 30m or 2h"))]
    pub timeout: Option<String>,
    /// Hooks run before and after each of its sessions.
    #[serde(default, skip_serializing_if = "is_default")]
    pub hooks: BackupHooks,
    /// BackupSessions kept (newest first).
    #[serde(default = "default_history")]
    #[schemars(range(min = 0))]
    pub session_history_limit: u32,
}

fn is_default(hooks: &BackupHooks) -> bool {
    hooks == &BackupHooks::default()
}

fn default_history() -> u32 {
    3
}

/// A session's schedule, run by a CronJob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scheduler {
    /// A cron schedule (`0 3 * * *`), in the operator's time zone unless `CRON_TZ=` starts it.
    pub schedule: String,
    /// Whether a slot starts while the previous session runs.
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// Succeeded CronJob Jobs kept.
    #[serde(default = "one")]
    #[schemars(range(min = 0))]
    pub successful_jobs_history_limit: u32,
    /// Failed CronJob Jobs kept.
    #[serde(default = "one")]
    #[schemars(range(min = 0))]
    pub failed_jobs_history_limit: u32,
}

fn one() -> u32 {
    1
}

/// What a slot does while a session runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// It is skipped (the session it would have made is `Skipped`).
    #[default]
    Forbid,
    /// It runs too.
    Allow,
}

/// A repository a session writes: which backend, and the Repository object's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryInfo {
    /// The Repository object (made by the operator when missing).
    pub name: String,
    /// The backend, by its name in this configuration.
    pub backend: String,
    /// Its directory in the backend's storage.
    pub directory: String,
    /// The Secret whose `password` opens it.
    pub encryption_secret: SecretRef,
}

/// A task of a session, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupTask {
    /// Which.
    pub name: TaskName,
    /// Its parameters (for manifests: `includeResources`, `excludeResources`,
    /// `labelSelector`, `includeClusterResources`; for volumes: `includeVolumes`,
    /// `excludeVolumes`, `quiesce`; for StackState's data stores: `configMap`, `secret`,
    /// `storageEndpoint`, and `cronJob` for settings and VictoriaMetrics).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

/// The tasks a session can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TaskName {
    /// The manifests of the target namespace.
    ManifestBackup,
    /// The volumes of the target's workloads, through movers.
    VolumeBackup,
    /// StackState's StackGraph (its backup Job, as sts-backup runs it).
    StackgraphBackup,
    /// StackState's settings (a Job from the installation's settings backup CronJob).
    SettingsBackup,
    /// StackState's VictoriaMetrics instances (a Job from the CronJob named by `cronJob`).
    VictoriaMetricsBackup,
    /// An Elasticsearch snapshot of StackState's indices.
    ElasticsearchSnapshot,
}

/// Retries of a failed session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfig {
    /// How many.
    #[schemars(range(min = 0, max = 10))]
    pub max_retry: u32,
    /// How long after the failure each starts (`5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
}

/// What the operator found of a configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupConfigurationStatus {
    /// Ready (everything it names exists and is ready), NotReady, or Invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BackupConfigurationPhase>,
    /// Whether the target exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_found: Option<bool>,
    /// What is missing or wrong.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A configuration's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BackupConfigurationPhase {
    /// Its sessions are scheduled.
    Ready,
    /// Something it names is missing or not ready (a storage, a Secret, the target).
    NotReady,
    /// It cannot work as written (a storage it may not use, a bad schedule).
    Invalid,
}
