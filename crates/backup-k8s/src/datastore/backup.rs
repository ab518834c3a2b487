//! A data store's Job run without scaling anything: a backup (export, then upload under the
//! standard name), or StackGraph v2's backfill and abort, which work on the live system.

use super::restore::remove_job_objects;
use super::{DataStoreSpec, JobRequest, Operation};
use backup_core::cluster::{Cluster, ContainerLog, JobState};
use backup_core::workflow::WorkflowError;
use serde::Serialize;
use std::time::Duration;

/// What a Job did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobOutcome {
    /// The archive it wrote or worked on.
    pub archive: String,
    /// The Job.
    pub job: String,
    /// How it ended.
    pub job_state: JobState,
    /// Logs of every container, when it failed.
    pub logs: Vec<ContainerLog>,
}

/// One Job of one data store in one namespace, run to its end. Nothing is scaled: a backup
/// exports the live data store, as the chart's CronJob does.
pub struct JobRun<'a, C: Cluster + ?Sized> {
    cluster: &'a C,
    namespace: String,
    spec: DataStoreSpec,
}

impl<'a, C: Cluster + ?Sized> JobRun<'a, C> {
    /// Jobs of `spec`'s data store in `namespace`.
    pub fn new(cluster: &'a C, namespace: &str, spec: DataStoreSpec) -> Self {
        Self {
            cluster,
            namespace: namespace.to_owned(),
            spec,
        }
    }

    /// The name the Job of `op` gets for `request`.
    pub fn job_name(&self, op: Operation, request: &JobRequest) -> String {
        self.spec.job_name(op, &request.run_id)
    }

    /// Creates the script, credentials, scratch volume and the Job of `op`, waits (by
    /// watching) for the Job, collects the logs of a failure, and removes the Job, volume
    /// and credentials.
    pub async fn run(
        &self,
        op: Operation,
        request: &JobRequest,
        timeout: Duration,
    ) -> Result<JobOutcome, WorkflowError> {
        if self.spec.command(op).is_none() {
            return Err(WorkflowError::Unsupported(format!(
                "{} has no {} Job",
                self.spec.name,
                op.noun()
            )));
        }
        let m = self.spec.manifests(&self.namespace, op, request);
        let job = self.job_name(op, request);
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
        Ok(JobOutcome {
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
