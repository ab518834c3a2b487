//! A StackGraph backup now: the chart's backup Job, run as sts-backup runs it, writing an
//! archive named as the chart's CronJob names them, into the installation's archive bucket.

use super::{DataStore, Installation, SpecOptions, StackStateError};
use backup_core::cluster::Cluster;
use backup_k8s::datastore::{JobOutcome, JobRequest, JobRun, Operation};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// A StackGraph backup ready to run: its Job's spec and request.
pub struct StackGraphBackup<'a, C: Cluster> {
    run: JobRun<'a, C>,
    request: JobRequest,
}

impl<C: Cluster> Installation<C> {
    /// The backup taken at `now`; `storage_endpoint` overrides the configuration's.
    pub fn stackgraph_backup(
        &self,
        storage_endpoint: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<StackGraphBackup<'_, C>, StackStateError> {
        let spec =
            DataStore::StackGraph.spec(&self.config, storage_endpoint, SpecOptions::default())?;
        let archive = format!("sts-backup-{}.graph", now.format("%Y%m%d-%H%M"));
        Ok(StackGraphBackup {
            run: JobRun::new(&self.cluster, &self.namespace, spec),
            request: self.job_request(archive)?,
        })
    }
}

impl<C: Cluster> StackGraphBackup<'_, C> {
    /// The archive it writes.
    pub fn archive(&self) -> &str {
        &self.request.archive
    }

    /// Runs the Job to its end (at most `timeout`), then removes it.
    pub async fn run(&self, timeout: Duration) -> Result<JobOutcome, StackStateError> {
        Ok(self
            .run
            .run(Operation::Backup, &self.request, timeout)
            .await?)
    }
}
