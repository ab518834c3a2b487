//! A data store restored by a Kubernetes Job (StackGraph; settings and VictoriaMetrics are
//! the same engine with another [`DataStoreSpec`]): scale the users down, run the Job that
//! downloads the archive and imports it, scale them back up. The pause/resume state lives
//! in annotations (see `backup_core::workflow`), so everything can be finalized later.

mod backup;
mod cronjob_run;
mod manifests;
mod restore;
mod settings;
mod stackgraph;
mod stackgraph_v2;
mod stackpacks;
mod victoria_metrics;

pub use backup::{JobOutcome, JobRun};
pub use cronjob_run::{CronJobChoice, CronJobRun, SETTINGS_BACKUP_SELECTOR, job_from_cronjob};
pub use manifests::{JobManifests, JobRequest};
pub use restore::{FinalizeOutcome, JobRestore, RestorePlan, StartedRestore};
pub use settings::{SETTINGS, SETTINGS_SUFFIX, settings_spec};
pub use stackgraph::{GRAPH_SUFFIX, STACKGRAPH, stackgraph_spec};
pub use stackgraph_v2::{GRAPH_V2_SUFFIX, STACKGRAPH_V2, stackgraph_v2_prefix, stackgraph_v2_spec};
pub use victoria_metrics::{VICTORIA_METRICS, VM_BACKUP_MARKER, victoria_metrics_spec};

use backup_core::stackstate::{JobSettings, PvcSettings};
use std::collections::BTreeMap;

/// Everything that makes one job-based data store different from another.
#[derive(Debug, Clone)]
pub struct DataStoreSpec {
    /// Its name (`stackgraph`, `stackgraph-v2`): names the Jobs and the CLI commands.
    pub name: String,
    /// The restore lock its restores take and honour: the data store whose data they
    /// replace (`stackgraph` for both StackGraph backup formats, as `sts-backup` has it).
    pub lock: String,
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
    /// `host:port` the wait init container waits for (the object store); no init container
    /// when `None`.
    pub wait_for: Option<String>,
    /// The scripts mounted in /backup-restore-scripts, by file name.
    pub scripts: BTreeMap<String, String>,
    /// The script each operation's Job runs (an operation absent here has no Job).
    pub commands: BTreeMap<Operation, String>,
    /// ConfigMap with the logging configuration, mounted at /opt/docker/etc_log.
    pub logging_config_map: Option<String>,
    /// Split uploaded backups into parts of this size (`500M`), when set.
    pub archive_split_size: Option<String>,
    /// Pod settings from the configuration.
    pub job: JobSettings,
    /// Scratch space at /tmp-data.
    pub scratch: Scratch,
    /// Existing claims mounted in every container (a legacy backup volume, local StackPacks).
    pub mounts: Vec<ClaimMount>,
    /// One container per instance of the data store (VictoriaMetrics' mirrored pair); empty:
    /// one container named after the operation.
    pub instances: Vec<JobInstance>,
    /// Labels put on everything created (`kubernetes.commonLabels`).
    pub common_labels: BTreeMap<String, String>,
    /// Seconds a finished Job is kept before Kubernetes deletes it.
    pub ttl_seconds_after_finished: i32,
}

/// Scratch space of a Job.
#[derive(Debug, Clone, PartialEq)]
pub enum Scratch {
    /// A claim created for the Job and named after it (large archives).
    Claim(PvcSettings),
    /// The node's disk (small archives).
    EmptyDir,
    /// None: the Job streams its data and needs no /tmp-data.
    None,
}

/// An existing claim mounted into a Job's containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMount {
    /// The claim.
    pub claim: String,
    /// Where it is mounted.
    pub mount_path: String,
}

/// One container of a Job working on one instance of the data store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInstance {
    /// Container name (`restore-0`).
    pub container: String,
    /// The instance's own variables.
    pub env: BTreeMap<String, String>,
    /// The instance's own claims.
    pub mounts: Vec<ClaimMount>,
}

/// What a Job of the engine does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Download an archive and import it.
    Restore,
    /// Export the data and upload it as an archive.
    Backup,
    /// StackGraph v2: load the historic data of the restored backup while the system runs.
    Backfill,
    /// StackGraph v2: end an unfinished backfill, keeping the data loaded so far.
    Abort,
}

impl Operation {
    /// The word in object names (`stackgraph-restore-...`).
    pub fn noun(self) -> &'static str {
        match self {
            Operation::Restore => "restore",
            Operation::Backup => "backup",
            Operation::Backfill => "backfill",
            Operation::Abort => "abort",
        }
    }
}
/// A `host:port` the Job's wait container checks (it reaches `sh -c`): a DNS name or an IP
/// address and a port, nothing a shell would interpret. Read from the configuration, so
/// checked before any manifest is made.
pub fn wait_target(host_port: &str) -> Result<String, backup_core::stackstate::ConfigError> {
    let valid = host_port.rsplit_once(':').is_some_and(|(host, port)| {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
            && port.parse::<u16>().is_ok_and(|p| p > 0)
    });
    if valid {
        Ok(host_port.to_owned())
    } else {
        Err(backup_core::stackstate::ConfigError::Field {
            field: "the object store endpoint".into(),
            detail: "not a host:port (a DNS name or an IP address, and a port)".into(),
        })
    }
}

/// What the data stores' tests read from Job manifests.
#[cfg(test)]
pub(crate) mod test_support {
    use serde_json::Value;
    use std::collections::BTreeMap;

    /// The variables of a Job's first container, by name.
    pub fn container_env(job: &Value) -> BTreeMap<String, String> {
        job["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_string(),
                    e["value"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::wait_target;

    #[test]
    fn wait_targets_are_host_and_port_and_nothing_a_shell_reads() {
        for good in [
            "suse-observability-minio:9000",
            "s3.example.com:443",
            "10.0.0.1:80",
            "[::1]:9000",
        ] {
            assert_eq!(wait_target(good).unwrap(), good);
        }
        for bad in [
            "minio:9000; rm -rf /",
            "$(id):80",
            "minio:`id`",
            "minio",
            "minio:0",
            "minio:99999",
            ":9000",
            "a b:80",
        ] {
            assert!(wait_target(bad).is_err(), "{bad}");
        }
    }
}
