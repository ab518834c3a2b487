//! kbackup's custom resources, group `kbackup.io`, version `v1alpha1`, in the shapes of
//! KubeStash's (seeds 003-004): where backups go ([`BackupStorage`]), the repositories in it
//! ([`Repository`]), how long snapshots are kept ([`RetentionPolicy`]), what is backed up
//! when ([`BackupConfiguration`]), one run of it ([`BackupSession`]), what a run stored
//! ([`Snapshot`]) and a restore of it ([`RestoreSession`]). The operator reconciles them; `kbackup` creates and reads them.
//!
//! The CustomResourceDefinitions are generated from these types ([`crds`]) and checked in
//! under `charts/kbackup/crds/` (`cargo run -p backup-api --example crds` writes them; a test fails when they
//! drift).

mod common;
mod configuration;
mod hook;
mod repository;
mod restore;
mod retention;
mod session;
mod snapshot;
mod storage;
mod verifier;

pub use common::{
    Condition, ConditionStatus, DeletionPolicy, NamespaceSelector, NamespacesFrom, ObjectRef,
    SecretRef, TypedObjectRef, UsagePolicy,
};
pub use configuration::{
    BackendReference, BackupConfiguration, BackupConfigurationPhase, BackupConfigurationSpec,
    BackupConfigurationStatus, BackupTask, ConcurrencyPolicy, RepositoryInfo, RetryConfig,
    Scheduler, SessionConfig, TaskName,
};
pub use hook::{
    BackupHooks, ExecAction, HookAction, HookExecutionPolicy, HookExecutionStatus, HookExecutor,
    HookExecutorType, HookInfo, HookParameter, HookPhase, HookStatus, HookTemplate,
    HookTemplateSpec, HttpAction, JobHookExecutor, PodHookExecutor, PodHookStrategy, RestoreHooks,
};
pub use repository::{Repository, RepositoryPhase, RepositorySpec, RepositoryStatus, SnapshotInfo};
pub use restore::{
    ExistingObjects, ManifestOptions, RestoreComponentStatus, RestoreDataSource, RestoreDependency,
    RestorePhase, RestoreSession, RestoreSessionSpec, RestoreSessionStatus, RestoreTask,
};
pub use retention::{
    FailedSnapshotsKeep, RetentionPolicy, RetentionPolicySpec, SuccessfulSnapshotsKeep,
};
pub use session::{
    BackupSession, BackupSessionPhase, BackupSessionSpec, BackupSessionStatus,
    RetentionPolicyApplyStatus, SessionSnapshot,
};
pub use snapshot::{
    ComponentStatus, Snapshot, SnapshotPhase, SnapshotSpec, SnapshotStatus, SnapshotVerification,
};
pub use storage::{
    AzureBackend, BackupStorage, BackupStorageSpec, BackupStorageStatus, GcsBackend, LocalBackend,
    Provider, RepositoryUsage, S3Backend, StorageBackend, StoragePhase,
};
pub use verifier::{
    BackupVerifier, BackupVerifierSpec, BackupVerifierStatus, Verification, VerificationResult,
    VerificationRun, VerifierPhase,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of kbackup's resources.
pub const GROUP: &str = "kbackup.io";
/// Their version.
pub const VERSION: &str = "v1alpha1";
/// Their `apiVersion`.
pub const API_VERSION: &str = "kbackup.io/v1alpha1";

/// The CustomResourceDefinitions of every kind, in a fixed order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        BackupStorage::crd(),
        Repository::crd(),
        RetentionPolicy::crd(),
        BackupConfiguration::crd(),
        BackupSession::crd(),
        Snapshot::crd(),
        RestoreSession::crd(),
        HookTemplate::crd(),
        BackupVerifier::crd(),
    ]
}

/// The CustomResourceDefinitions as one YAML stream, as checked in.
pub fn crds_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let mut text = String::from(
        "# Generated from crates/backup-api by `cargo run -p backup-api --example crds`: do not edit.\n",
    );
    for crd in crds() {
        text.push_str("---\n");
        text.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(text)
}
