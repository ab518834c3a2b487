//! BackupStorage: an object store (or a claim) that repositories live in, with the Secret
//! holding its credentials.

use crate::common::{Condition, DeletionPolicy, UsagePolicy};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where backups are stored, and who may use it.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "kbackup.io",
    version = "v1alpha1",
    kind = "BackupStorage",
    namespaced,
    status = "BackupStorageStatus",
    shortname = "bs",
    category = "kbackup",
    doc = "Where backups are stored (an object store or a claim), with the Secret of its credentials, and who may use it.",
    label("app.kubernetes.io/part-of", "kbackup"),
    printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".spec.storage.provider"}"#,
    printcolumn = r#"{"name":"Default","type":"boolean","jsonPath":".spec.default"}"#,
    printcolumn = r#"{"name":"Deletion-Policy","type":"string","jsonPath":".spec.deletionPolicy"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageSpec {
    /// The backend.
    pub storage: StorageBackend,
    /// Which namespaces' repositories may use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_policy: Option<UsagePolicy>,
    /// The storage repositories use when they name none (one per namespace).
    #[serde(default)]
    pub default: bool,
    /// What deleting this object does to the repositories in it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

impl BackupStorageSpec {
    /// An S3 storage, with the defaults of every other field.
    pub fn s3(backend: S3Backend) -> Self {
        Self {
            storage: StorageBackend {
                provider: Provider::S3,
                s3: Some(backend),
                azure: None,
                gcs: None,
                local: None,
            },
            usage_policy: None,
            default: false,
            deletion_policy: DeletionPolicy::default(),
        }
    }
}

/// A backend: its provider, and that provider's settings (only its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "(self.provider == 's3') == has(self.s3) && (self.provider == 'azure') == has(self.azure) && (self.provider == 'gcs') == has(self.gcs) && (self.provider == 'local') == has(self.local)"
).message("give the settings of the provider named, and no other"))]
pub struct StorageBackend {
    /// The provider.
    pub provider: Provider,
    /// S3 and S3-compatible stores (MinIO, Ceph RGW).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Backend>,
    /// Azure Blob Storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureBackend>,
    /// Google Cloud Storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcs: Option<GcsBackend>,
    /// A PersistentVolumeClaim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalBackend>,
}

/// A storage provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// S3 and compatible stores.
    S3,
    /// Azure Blob Storage.
    Azure,
    /// Google Cloud Storage.
    Gcs,
    /// A claim.
    Local,
}

/// An S3 bucket. The Secret holds `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Backend {
    /// The endpoint (default: AWS's for the region); `http://` only for test stores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("an http(s) URL"))]
    pub endpoint: Option<String>,
    /// The bucket.
    #[schemars(length(min = 1, max = 255))]
    pub bucket: String,
    /// The region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A directory in the bucket under which repositories go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The Secret of the credentials, in the storage's namespace.
    pub secret_name: String,
}

/// An Azure container. The Secret holds `AZURE_STORAGE_ACCOUNT_KEY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureBackend {
    /// The storage account.
    pub storage_account: String,
    /// The container.
    pub container: String,
    /// The endpoint (default: the account's on Azure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// A directory in the container under which repositories go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The Secret of the credentials, in the storage's namespace.
    pub secret_name: String,
}

/// A Google Cloud Storage bucket. The Secret holds `GOOGLE_SERVICE_ACCOUNT_KEY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcsBackend {
    /// The bucket.
    pub bucket: String,
    /// A directory in the bucket under which repositories go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The Secret of the credentials, in the storage's namespace.
    pub secret_name: String,
}

/// A PersistentVolumeClaim in the storage's namespace, mounted by the Jobs that use it: the
/// probe, the sessions and their movers, the wipe-out. Only configurations of that namespace
/// may use it (a pod mounts claims of its own namespace only); movers of other nodes need a
/// claim they can all mount (ReadWriteMany).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalBackend {
    /// The claim.
    #[schemars(length(min = 1, max = 253))]
    pub claim_name: String,
    /// A directory in the claim under which repositories go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    #[x_kube(validation = Rule::new("self != '..' && !self.startsWith('../') && !self.endsWith('/..') && !self.contains('/../')").message("a directory below the claim's root (no '..')"))]
    pub sub_path: Option<String>,
}

/// What the operator found of a storage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageStatus {
    /// Whether it can be used (its last probe: reach, list, write, read, delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<StoragePhase>,
    /// When it was last probed (RFC 3339); probed again 10 minutes after when Ready, a
    /// minute after when not, or as soon as its spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<String>,
    /// The generation of the spec the last probe tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Bytes its repositories hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_size: Option<String>,
    /// The repositories using it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<RepositoryUsage>,
    /// The probe's steps and what failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A storage's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StoragePhase {
    /// Reachable with its credentials.
    Ready,
    /// Not usable: the conditions say why.
    NotReady,
}

/// A repository in a storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryUsage {
    /// The Repository object.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its directory in the storage.
    pub path: String,
    /// Bytes it holds, for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Bytes it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
}
