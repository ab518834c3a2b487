//! Cluster resources as a component of a kbackup snapshot: backed up, read back, described,
//! compared, and restored.

mod application;
mod backup;
mod describe;
mod diff;
mod manifests;
mod restore;
mod session_status;

pub use application::{
    ApplicationOutcome, ApplicationPlan, VolumeFill, plan_application, restore_application,
};
pub use backup::{BackupOptions, ClusterBackup, ClusterBackupError, backup, backup_with_volumes};
pub use describe::{SnapshotContents, describe_snapshot};
pub use diff::{SnapshotChange, diff_snapshots};
pub use manifests::{MAX_RECORD_LINE, ManifestsError, read_manifests};
pub use restore::{ManifestRestore, RestorePlanError, plan_restore};
pub use session_status::{ComponentStatus, Condition, RestoreSessionStatus};

/// The component holding the manifests.
pub const MANIFESTS: &str = "manifests";
/// The engine recorded in the component.
pub const ENGINE: &str = "cluster-resources";
