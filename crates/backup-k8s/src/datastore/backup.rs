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
        let mut outcome = follow_to_end(self.cluster, &self.namespace, job, timeout).await?;
        self.remove_objects(&outcome.job).await;
        outcome.archive.clone_from(&request.archive);
        Ok(outcome)
    }

    async fn remove_objects(&self, job: &str) {
        remove_job_objects(self.cluster, &self.namespace, &self.spec, job).await;
    }
}

/// Waits (by watching) for the Job `job` at most `timeout`, collects the logs of a failure,
/// and deletes it; the outcome names no archive.
pub(super) async fn follow_to_end<C: Cluster + ?Sized>(
    cluster: &C,
    namespace: &str,
    job: String,
    timeout: Duration,
) -> Result<JobOutcome, WorkflowError> {
    let job_state = cluster.wait_job(namespace, &job, timeout).await?;
    let logs = match job_state {
        JobState::Failed(_) => cluster.job_logs(namespace, &job).await?,
        _ => vec![],
    };
    cluster.delete_job(namespace, &job).await?;
    Ok(JobOutcome {
        archive: String::new(),
        job,
        job_state,
        logs,
    })
}
