//! Repository: one kbackup repository in a storage, with the Secret of its password.

use crate::common::{Condition, DeletionPolicy, ObjectRef, SecretRef, TypedObjectRef};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A repository: where in which storage, and the Secret that opens it.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "kbackup.io",
    version = "v1alpha1",
    kind = "Repository",
    namespaced,
    status = "RepositoryStatus",
    shortname = "repo",
    category = "kbackup",
    doc = "A kbackup repository in a BackupStorage, with the Secret of its password.",
    label("app.kubernetes.io/part-of", "kbackup"),
    printcolumn = r#"{"name":"Integrity","type":"boolean","jsonPath":".status.integrity"}"#,
    printcolumn = r#"{"name":"Snapshot-Count","type":"integer","jsonPath":".status.snapshotCount"}"#,
    printcolumn = r#"{"name":"Size","type":"string","jsonPath":".status.size"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Last-Successful-Backup","type":"date","jsonPath":".status.lastBackupTime"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RepositorySpec {
    /// The storage.
    pub storage_ref: ObjectRef,
    /// The application backed up into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_ref: Option<TypedObjectRef>,
    /// Its directory in the storage (relative, no `..`).
    #[schemars(length(max = 1024))]
    #[x_kube(validation = Rule::new("self != '' && !self.startsWith('/') && self != '..' && !self.startsWith('../') && !self.endsWith('/..') && !self.contains('/../')").message("a relative directory without '..'"))]
    pub directory: String,
    /// The Secret whose `password` opens it.
    pub encryption_secret: SecretRef,
    /// What deleting this object does to the repository's data.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// What the operator found of a repository.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryStatus {
    /// Whether it is initialised and opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RepositoryPhase>,
    /// The outcome of its last `check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<bool>,
    /// Snapshots it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_count: Option<u64>,
    /// Bytes it holds, for a person (`12.5 MiB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Bytes it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// When its newest successful snapshot was taken (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_time: Option<String>,
    /// Its newest snapshots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_snapshots: Vec<SnapshotInfo>,
    /// Why it is not ready, and more.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A repository's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RepositoryPhase {
    /// Initialised and opened with its Secret.
    Ready,
    /// Not usable: the conditions say why.
    NotReady,
}

/// One of a repository's newest snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    /// The Snapshot object.
    pub name: String,
    /// Its phase.
    pub phase: String,
    /// When it was taken (RFC 3339).
    pub snapshot_time: String,
    /// Bytes it added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}
