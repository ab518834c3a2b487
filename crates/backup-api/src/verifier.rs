//! BackupVerifier: proof that a repository's backups restore. On its schedule it restores the
//! repository's newest snapshot that succeeded into a scratch namespace (through a
//! RestoreSession: manifests and volumes), runs its query hooks against the restored
//! application there, records the outcome on the Snapshot (`verificationStatus`, with the
//! evidence) and deletes the scratch namespace.

use crate::common::Condition;
use crate::hook::HookInfo;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Scheduled restores that prove a repository's backups restore.
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "kbackup.io",
    version = "v1alpha1",
    kind = "BackupVerifier",
    namespaced,
    status = "BackupVerifierStatus",
    shortname = "bv",
    category = "kbackup",
    doc = "Scheduled restores of a repository's newest snapshot into a scratch namespace, checked.",
    label("app.kubernetes.io/part-of", "kbackup"),
    printcolumn = r#"{"name":"Repository","type":"string","jsonPath":".spec.repository"}"#,
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Last","type":"string","jsonPath":".status.lastVerification.result"}"#,
    printcolumn = r#"{"name":"Snapshot","type":"string","jsonPath":".status.lastVerification.snapshot"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BackupVerifierSpec {
    /// The Repository (of its namespace) whose newest snapshot that succeeded is verified.
    #[schemars(length(min = 1, max = 253))]
    pub repository: String,
    /// When it runs (cron, UTC); without one it runs once, when made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub schedule: Option<String>,
    /// How long one verification's restore may take (`30m`; one hour when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(s|m|h))+$')").message("a duration such as 90s, 30m or 2h"))]
    pub timeout: Option<String>,
    /// Hooks run against the restored application in the scratch namespace once it is
    /// restored (a query that must answer); one that fails fails the verification.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub query_hooks: Vec<HookInfo>,
    /// No verification starts while set.
    #[serde(default)]
    pub paused: bool,
}

/// How verifications went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupVerifierStatus {
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<VerifierPhase>,
    /// The verification running now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<VerificationRun>,
    /// The last verification that ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verification: Option<Verification>,
    /// When the next one starts (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    /// Why it cannot run, and its steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A verifier's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum VerifierPhase {
    /// Waiting for its next run.
    Idle,
    /// A verification runs.
    Verifying,
    /// It cannot run as written (its conditions say why).
    Invalid,
}

/// A verification under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationRun {
    /// The Snapshot restored.
    pub snapshot: String,
    /// The RestoreSession doing it.
    pub restore_session: String,
    /// The scratch namespace it restores into.
    pub namespace: String,
    /// When it started (RFC 3339).
    pub started: String,
}

/// A verification that ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// The Snapshot verified.
    pub snapshot: String,
    /// `Verified` or `VerificationFailed`.
    pub result: VerificationResult,
    /// When it ended (RFC 3339).
    pub time: String,
    /// How long it took (`42s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// What was checked and what was found, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum VerificationResult {
    /// Restored whole, and every query hook succeeded.
    Verified,
    /// Something was not restored, or a query hook failed.
    VerificationFailed,
}
