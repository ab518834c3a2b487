//! A data store restored by a Kubernetes Job (StackGraph; settings and VictoriaMetrics are
//! the same engine with another [`DataStoreSpec`]): scale the users down, run the Job that
//! downloads the archive and imports it, scale them back up. The pause/resume state lives
//! in annotations (see `backup_core::workflow`), so everything can be finalized later.

mod backup;
mod manifests;
mod restore;
mod stackgraph;

pub use backup::{BackupOutcome, JobBackup};
pub use manifests::{JobManifests, JobRequest};
pub use restore::{FinalizeOutcome, JobRestore, RestorePlan, StartedRestore};
pub use stackgraph::{GRAPH_SUFFIX, STACKGRAPH, stackgraph_spec};

use backup_core::stackstate::{JobSettings, PvcSettings};
use std::collections::BTreeMap;

/// Everything that makes one job-based data store different from another.
#[derive(Debug, Clone)]
pub struct DataStoreSpec {
    /// Its name (`stackgraph`): names the Jobs, the lock and the CLI commands.
    pub name: String,
    /// Label selector of the workloads to scale down during a restore.
    pub scale_down_selector: String,
    /// Bucket of the archives.
    pub bucket: String,
    /// Key prefix in the bucket.
    pub prefix: String,
    /// The data store's own Job variables (`BACKUP_STACKGRAPH_BUCKET_NAME`, `MINIO_ENDPOINT`,
    /// `ZOOKEEPER_QUORUM`, ...), named as the StackState backup image's scripts expect them.
    pub env: BTreeMap<String, String>,
    /// Extra variables of restore Jobs (`FORCE_DELETE=-force`).
    pub restore_env: BTreeMap<String, String>,
    /// `host:port` the wait init container waits for (the object store).
    pub wait_for: String,
    /// The restore script, as (file name, content), mounted in /backup-restore-scripts.
    pub restore_script: (String, String),
    /// The backup script, as (file name, content).
    pub backup_script: (String, String),
    /// ConfigMap with the logging configuration, mounted at /opt/docker/etc_log.
    pub logging_config_map: Option<String>,
    /// Split uploaded backups into parts of this size (`500M`), when set.
    pub archive_split_size: Option<String>,
    /// Pod settings from the configuration.
    pub job: JobSettings,
    /// Scratch volume settings.
    pub pvc: PvcSettings,
    /// Labels put on everything created (`kubernetes.commonLabels`).
    pub common_labels: BTreeMap<String, String>,
    /// Seconds a finished Job is kept before Kubernetes deletes it.
    pub ttl_seconds_after_finished: i32,
}

/// What a Job of the engine does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Download an archive and import it.
    Restore,
    /// Export the data and upload it as an archive.
    Backup,
}

impl Operation {
    /// The word in object names (`stackgraph-restore-...`).
    pub fn noun(self) -> &'static str {
        match self {
            Operation::Restore => "restore",
            Operation::Backup => "backup",
        }
    }
}
