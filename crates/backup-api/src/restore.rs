//! RestoreSession: one restore of a snapshot into the cluster, in the shape of KubeStash's
//! (seed 004): the target, the data source, what is restored, and the status per component.

use crate::common::{Condition, SecretRef, TypedObjectRef};
use crate::hook::{HookExecutionStatus, RestoreHooks};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A restore of a snapshot into the cluster.
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "kbackup.io",
    version = "v1alpha1",
    kind = "RestoreSession",
    namespaced,
    status = "RestoreSessionStatus",
    shortname = "rst",
    category = "kbackup",
    doc = "A restore of a snapshot (its manifests, its volumes) into the cluster.",
    label("app.kubernetes.io/part-of", "kbackup"),
    printcolumn = r#"{"name":"Repository","type":"string","jsonPath":".spec.dataSource.repository"}"#,
    printcolumn = r#"{"name":"Snapshot","type":"string","jsonPath":".spec.dataSource.snapshot"}"#,
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.target.name"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Duration","type":"string","jsonPath":".status.duration"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSessionSpec {
    /// Where the data goes: a Namespace (its manifests and volumes), or a StatefulSet or
    /// Deployment (its volumes, and its manifests when it is gone).
    pub target: TypedObjectRef,
    /// The snapshot restored.
    pub data_source: RestoreDataSource,
    /// What of the snapshot is restored (empty: its manifests, and its volumes when it holds
    /// some).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    pub tasks: Vec<RestoreTask>,
    /// How long the restore may run before it is failed and its work stopped (`30m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(s|m|h))+$')").message("a duration such as 90s, 30m or 2h"))]
    pub timeout: Option<String>,
    /// Which manifests are restored, where, and what happens to those that exist.
    #[serde(default)]
    pub manifest_options: ManifestOptions,
    /// Hooks run before and after the restore.
    #[serde(default, skip_serializing_if = "RestoreHooks::is_empty")]
    pub hooks: RestoreHooks,
    /// Each restored volume read back by its mover and compared with the snapshot (every
    /// file's content chunk by chunk, sizes, directories, links); a difference fails it.
    #[serde(default)]
    pub verify: bool,
    /// Parameters of a data-store task: `configMap` and `secret`, the installation's backup
    /// configuration (default: the chart's), `storageEndpoint` (the object store's URL when
    /// not the installation's MinIO), `elasticsearchUrl` (when not reached through its
    /// Service).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

/// The snapshot restored and how to open it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreDataSource {
    /// The namespace of the Repository and Snapshot (default: the RestoreSession's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Repository object (needed with `snapshot: latest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The Snapshot object, or `latest`: the newest Succeeded Snapshot of the repository.
    #[serde(default = "latest")]
    pub snapshot: String,
    /// The components restored (empty: all). A component's name as the Snapshot lists it,
    /// or `pod-N` for the volumes of a StatefulSet target's pod N.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
    /// The Secret whose `password` opens the repository (default: the Repository's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_secret: Option<SecretRef>,
}

fn latest() -> String {
    "latest".into()
}

/// What a restore restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreTask {
    /// The snapshot's manifests (with their claims, filled before the workloads start when
    /// volumes are restored too).
    ManifestRestore,
    /// The snapshot's volume components.
    VolumeRestore,
    /// StackState's StackGraph, by its own restore Job (as sts-backup runs it), the
    /// workloads that use it scaled down meanwhile.
    StackgraphRestore,
    /// StackState's settings, by their own restore Job.
    SettingsRestore,
    /// StackState's VictoriaMetrics instances, by their own restore Job.
    VictoriaMetricsRestore,
    /// StackState's Elasticsearch indices, from a snapshot of its snapshot repository (the
    /// writers scaled down, the live indices replaced).
    ElasticsearchRestore,
}

impl RestoreTask {
    /// Whether it restores one of StackState's data stores (not a kbackup snapshot).
    pub fn is_data_store(self) -> bool {
        !matches!(self, Self::ManifestRestore | Self::VolumeRestore)
    }
}

/// The cluster restore's choices: mapping, filters, existing objects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestOptions {
    /// The namespace the target namespace's objects are restored into (default: their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_namespace: Option<String>,
    /// Only these resources (`deployments`, `configmaps`...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_resources: Vec<String>,
    /// Not these resources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_resources: Vec<String>,
    /// Only objects with these labels (`app=web`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// What happens to an object that exists and differs.
    #[serde(default)]
    pub existing: ExistingObjects,
}

/// What happens to an object that exists and differs from the snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ExistingObjects {
    /// It is left as it is (counted as skipped).
    #[default]
    Skip,
    /// It is replaced by the snapshot's.
    Update,
    /// The restore of it fails.
    Fail,
}

/// How a restore went (seed 004's shape).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSessionStatus {
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RestorePhase>,
    /// Whether the target existed when the restore started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_found: Option<bool>,
    /// How long it took (`25s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Past it the restore is failed and its work stopped (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// How many components are restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_components: Option<u32>,
    /// Each component's restore.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, RestoreComponentStatus>,
    /// The objects it needs, and whether each was found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<RestoreDependency>,
    /// The BackupConfigurations paused for the restore (resumed after it, however it ended).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paused_backups: Vec<TypedObjectRef>,
    /// How its hooks went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<HookExecutionStatus>,
    /// What a data store's restore runs, followed and finalized by the operator: the data
    /// store's own restore Job (StackGraph, settings, VictoriaMetrics), or the Elasticsearch
    /// snapshot being restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_store_operation: Option<String>,
    /// Its steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A restore's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RestorePhase {
    /// Not started.
    Pending,
    /// Its Job runs.
    Running,
    /// Every component was restored.
    Succeeded,
    /// A component failed, or the deadline passed.
    Failed,
    /// It cannot run as written.
    Invalid,
    /// Its Job's end could not be read.
    Unknown,
}

/// One component's restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreComponentStatus {
    /// Pending, Succeeded, Failed or PartiallyFailed.
    pub phase: String,
    /// How long it took (`10.09s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An object a restore needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreDependency {
    /// Its kind (`Snapshot`, `Repository`, `BackupStorage`, `Secret`).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Whether it exists.
    pub found: bool,
}
