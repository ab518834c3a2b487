//! Snapshot: a repository's snapshot as a cluster object, per session and repository.

use crate::common::{Condition, DeletionPolicy, TypedObjectRef};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A snapshot a session stored in a repository.
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kbackup.io",
    version = "v1alpha1",
    kind = "Snapshot",
    namespaced,
    status = "SnapshotStatus",
    shortname = "snap",
    category = "kbackup",
    doc = "A snapshot a BackupSession stored in a Repository, with its components.",
    label("app.kubernetes.io/part-of", "kbackup"),
    printcolumn = r#"{"name":"Repository","type":"string","jsonPath":".spec.repository"}"#,
    printcolumn = r#"{"name":"Session","type":"string","jsonPath":".spec.session"}"#,
    printcolumn = r#"{"name":"Snapshot-Time","type":"date","jsonPath":".status.snapshotTime"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Verification-Status","type":"string","jsonPath":".status.verificationStatus"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotSpec {
    /// The snapshot's id in the repository (set once it is written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// The Repository object.
    pub repository: String,
    /// The session of the configuration.
    pub session: String,
    /// The BackupSession that made it.
    pub backup_session: String,
    /// What was backed up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_ref: Option<TypedObjectRef>,
    /// What deleting this object does to the snapshot in the repository.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// What a snapshot holds and how it went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotStatus {
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<SnapshotPhase>,
    /// When it was taken (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_time: Option<String>,
    /// Its components by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, ComponentStatus>,
    /// How many components it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_components: Option<u32>,
    /// Bytes it added to the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Whether its data checked out whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<bool>,
    /// Whether a verifier restored it (`Verified`, `VerificationFailed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_status: Option<String>,
    /// The last verification of it: by whom, when, and what it found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<SnapshotVerification>,
    /// Its steps and what failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A snapshot's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SnapshotPhase {
    /// Its session has not started it.
    Pending,
    /// Being written.
    Running,
    /// Every component succeeded.
    Succeeded,
    /// Some components failed.
    Failed,
}

/// One component of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Succeeded, Failed or PartiallyFailed.
    pub phase: String,
    /// How long it took (`10.09s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Bytes of its data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A verification of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotVerification {
    /// The BackupVerifier.
    pub verifier: String,
    /// When it ended (RFC 3339).
    pub time: String,
    /// What was checked and found, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}
