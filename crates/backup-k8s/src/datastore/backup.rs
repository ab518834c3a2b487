//! Taking a backup now with the engine's backup Job (export, then upload under the
//! standard name).

use super::restore::remove_job_objects;
use super::{DataStoreSpec, JobRequest, Operation};
use backup_core::cluster::{Cluster, ContainerLog, JobState};
use backup_core::workflow::WorkflowError;
use serde::Serialize;
use std::time::Duration;

/// What a backup Job did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupOutcome {
    /// The archive's name.
    pub archive: String,
    /// The Job.
    pub job: String,
    /// How it ended.
    pub job_state: JobState,
    /// Logs of every container, when it failed.
    pub logs: Vec<ContainerLog>,
}

/// A backup Job of one data store in one namespace. Nothing is scaled: the export runs
/// against the live data store, as the chart's CronJob does.
pub struct JobBackup<'a, C: Cluster + ?Sized> {
    cluster: &'a C,
    namespace: String,
    spec: DataStoreSpec,
}

impl<'a, C: Cluster + ?Sized> JobBackup<'a, C> {
    /// A backup of `spec`'s data store in `namespace`.
    pub fn new(cluster: &'a C, namespace: &str, spec: DataStoreSpec) -> Self {
        Self {
            cluster,
            namespace: namespace.to_owned(),
            spec,
        }
    }

    /// Creates the script, credentials, scratch volume and Job, waits (by watching) for the
    /// Job, collects the logs of a failure, and removes the Job, volume and credentials.
    pub async fn run(
        &self,
        request: &JobRequest,
        timeout: Duration,
    ) -> Result<BackupOutcome, WorkflowError> {
        if self.spec.script(Operation::Backup).is_none() {
            return Err(WorkflowError::Unsupported(format!(
                "{} has no backup Job",
                self.spec.name
            )));
        }
        let m = self
            .spec
            .manifests(&self.namespace, Operation::Backup, request);
        let job = self.spec.job_name(Operation::Backup, &request.run_id);
        let created = m.create(self.cluster, &self.namespace).await;
        if let Err(error) = created {
            self.remove_objects(&job).await;
            return Err(error.into());
        }
        let job_state = self
            .cluster
            .wait_job(&self.namespace, &job, timeout)
            .await?;
        let logs = match job_state {
            JobState::Failed(_) => self.cluster.job_logs(&self.namespace, &job).await?,
            _ => vec![],
        };
        self.cluster.delete_job(&self.namespace, &job).await?;
        self.remove_objects(&job).await;
        Ok(BackupOutcome {
            archive: request.archive.clone(),
            job,
            job_state,
            logs,
        })
    }

    async fn remove_objects(&self, job: &str) {
        remove_job_objects(self.cluster, &self.namespace, &self.spec, job).await;
    }
}
