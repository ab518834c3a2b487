//! HookTemplate: an action run before or after a backup or a restore (KubeStash's
//! HookTemplate): a command in the target's pods or in a Job, or an HTTP GET or POST; and the
//! HookInfo a session names it by (seed 004), with its parameters, retries, timeout and when
//! it runs.

use crate::common::{ObjectRef, UsagePolicy};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An action to run around backups and restores.
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "kbackup.io",
    version = "v1alpha1",
    kind = "HookTemplate",
    namespaced,
    shortname = "hook",
    category = "kbackup",
    doc = "An action run before or after a backup or a restore: a command in pods or a Job, or an HTTP call.",
    label("app.kubernetes.io/part-of", "kbackup")
)]
#[serde(rename_all = "camelCase")]
pub struct HookTemplateSpec {
    /// Which namespaces' sessions may use it (its own only when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_policy: Option<UsagePolicy>,
    /// The parameters a session gives it, used in the action as `{{ .NAME }}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub params: Vec<HookParameter>,
    /// What it does.
    pub action: HookAction,
    /// Where a command runs (a command's hook only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<HookExecutor>,
}

/// A parameter of a HookTemplate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookParameter {
    /// Its name (`TABLE`), as the action uses it.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$")
    )]
    pub name: String,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<String>,
    /// Whether a session must give it.
    #[serde(default)]
    pub required: bool,
    /// Its value when a session gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// What a hook does: exactly one of a command, a GET and a POST.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.exec), has(self.httpGet), has(self.httpPost)].filter(x, x).size() == 1").message("exactly one of exec, httpGet and httpPost"))]
pub struct HookAction {
    /// A command (no shell unless it names one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    /// An HTTP GET; a 2xx answer is success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpAction>,
    /// An HTTP POST; a 2xx answer is success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_post: Option<HttpAction>,
}

/// A command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecAction {
    /// The program and its arguments.
    #[schemars(length(min = 1, max = 64))]
    pub command: Vec<String>,
}

/// An HTTP call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpAction {
    /// The URL (`http://db.shop.svc:8080/flush`).
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,
    /// Request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The body of a POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub body: Option<String>,
}

/// Where a command runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(self.type == 'Pod') == has(self.pod) && (self.type == 'Job') == has(self.job)").message("a Pod executor has `pod`, a Job executor has `job`"))]
pub struct HookExecutor {
    /// In running pods of the session's namespace, or in a Job of its own.
    #[serde(rename = "type")]
    pub type_: HookExecutorType,
    /// Which pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodHookExecutor>,
    /// Which image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobHookExecutor>,
}

/// Pod or Job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HookExecutorType {
    /// `kubectl exec` into running pods.
    Pod,
    /// A Job of its own.
    Job,
}

/// The pods a command runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodHookExecutor {
    /// Their labels (`app=db`).
    #[schemars(length(min = 1, max = 1024))]
    pub selector: String,
    /// The container (each pod's first when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// In one of them (the first by name) or in each.
    #[serde(default)]
    pub strategy: PodHookStrategy,
}

/// One pod or each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PodHookStrategy {
    /// The first running pod by name.
    #[default]
    ExecuteOnOne,
    /// Each running pod, in name order; the hook fails when one fails.
    ExecuteOnAll,
}

/// The Job a command runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobHookExecutor {
    /// Its image.
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// Its ServiceAccount (the namespace's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

/// A hook of a session (seed 004's HookInfo).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookInfo {
    /// Its name, in the status.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// The HookTemplate (of the session's namespace when it names none).
    pub hook_template: ObjectRef,
    /// Values of the template's parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// Attempts after a failed one.
    #[serde(default)]
    #[schemars(range(max = 10))]
    pub max_retry: u32,
    /// How long one attempt may take (`30s`; 30 seconds when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(s|m|h))+$')").message("a duration such as 30s or 5m"))]
    pub timeout: Option<String>,
    /// When it runs, by the outcome of the work it follows (post hooks only).
    #[serde(default)]
    pub execution_policy: HookExecutionPolicy,
}

/// When a hook runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HookExecutionPolicy {
    /// Whatever the outcome.
    #[default]
    Always,
    /// Only when the work succeeded.
    OnSuccess,
    /// Only when it failed.
    OnFailure,
}

impl HookExecutionPolicy {
    /// Whether a hook of this policy runs after work that `succeeded` or not.
    pub fn runs_after(self, succeeded: bool) -> bool {
        match self {
            Self::Always => true,
            Self::OnSuccess => succeeded,
            Self::OnFailure => !succeeded,
        }
    }
}

/// The hooks of a BackupConfiguration's session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupHooks {
    /// Run before the backup, in order; one that fails fails the session (nothing is backed
    /// up).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub pre_backup: Vec<HookInfo>,
    /// Run after it, in order, by their execution policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub post_backup: Vec<HookInfo>,
}

/// The hooks of a RestoreSession.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreHooks {
    /// Run before the restore, in order; one that fails fails the restore (nothing is
    /// restored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub pre_restore: Vec<HookInfo>,
    /// Run after it, in order, by their execution policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub post_restore: Vec<HookInfo>,
}

impl RestoreHooks {
    /// Whether there is no hook.
    pub fn is_empty(&self) -> bool {
        self.pre_restore.is_empty() && self.post_restore.is_empty()
    }
}

/// How the hooks of a session went (seed 004's `status.hooks`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookExecutionStatus {
    /// The hooks run before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_hooks: Vec<HookStatus>,
    /// The hooks run after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_hooks: Vec<HookStatus>,
}

/// One hook's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookStatus {
    /// The hook.
    pub name: String,
    /// How it went.
    pub phase: HookPhase,
}

/// A hook's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HookPhase {
    /// It succeeded (on its last attempt).
    Succeeded,
    /// Every attempt failed (the session's conditions say why).
    Failed,
    /// Not run: its execution policy, or an earlier pre hook failed.
    Skipped,
}
