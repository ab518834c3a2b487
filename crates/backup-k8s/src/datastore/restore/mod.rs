//! Starting, following and finalizing a Job-based restore.

use super::{DataStoreSpec, JobRequest, Operation, Scratch};
use async_trait::async_trait;
use backup_core::cluster::{Cluster, ContainerLog, JobState, ObjectRef};
use backup_core::engine::{RestoreEngine, RestoreState};
use backup_core::model::NextStep;
use backup_core::progress::Progress;
use backup_core::workflow::{self, PausedWorkload, WorkflowError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// What a restore will do, computed without changing anything (`--dry-run`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorePlan {
    /// The archive.
    pub archive: String,
    /// Workloads to scale down, with their current replicas.
    pub scale_down: Vec<(String, i32)>,
    /// Objects to create or update (`Kind/name`).
    pub create: Vec<String>,
    /// Why the restore would be refused now, if it would.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The request `start` runs.
    #[serde(skip)]
    pub request: JobRequest,
}

/// A restore whose Job is running.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartedRestore {
    /// The Job to follow or finalize.
    pub job: String,
    /// Workloads scaled down.
    pub paused: Vec<PausedWorkload>,
}

/// What finalizing found and did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalizeOutcome {
    /// The Job's state (`None`: no such Job).
    pub job_state: Option<JobState>,
    /// Workloads scaled back up (empty while the Job runs).
    pub resumed: Vec<PausedWorkload>,
    /// Logs of every container of the Job, when it failed.
    pub logs: Vec<ContainerLog>,
}

/// A Job-based restore of one data store in one namespace.
pub struct JobRestore<'a, C: Cluster + ?Sized> {
    cluster: &'a C,
    namespace: String,
    spec: DataStoreSpec,
    /// How long to wait for scaled-down pods to be gone.
    pub pods_timeout: Duration,
}

impl<'a, C: Cluster + ?Sized> JobRestore<'a, C> {
    /// A restore of `spec`'s data store in `namespace`.
    pub fn new(cluster: &'a C, namespace: &str, spec: DataStoreSpec) -> Self {
        Self {
            cluster,
            namespace: namespace.to_owned(),
            spec,
            pods_timeout: Duration::from_secs(300),
        }
    }

    async fn resume(&self) -> Result<Vec<workflow::PausedWorkload>, WorkflowError> {
        workflow::resume_workloads(
            self.cluster,
            &self.namespace,
            &self.spec.lock,
            &self.spec.scale_down_selector,
        )
        .await
    }

    async fn remove_objects(&self, job: &str) {
        remove_job_objects(self.cluster, &self.namespace, &self.spec, job).await;
    }

    /// The steps that clean up by hand what a failed restore leaves: its Job, its scratch
    /// claim, then the finalize that scales the workloads back up.
    pub fn cleanup_steps(&self, job: &str) -> Vec<NextStep> {
        let delete = |kind: &str| NextStep::DeleteObject {
            namespace: self.namespace.clone(),
            kind: kind.into(),
            name: job.into(),
        };
        let mut steps = vec![delete("Job")];
        if matches!(self.spec.scratch, Scratch::Claim(_)) {
            steps.push(delete("PersistentVolumeClaim"));
        }
        steps.push(NextStep::FinalizeRestore {
            namespace: self.namespace.clone(),
            data_store: self.spec.name.clone(),
            operation: Some(job.into()),
        });
        steps
    }
}

#[async_trait]
impl<C: Cluster + ?Sized> RestoreEngine for JobRestore<'_, C> {
    type Request = JobRequest;
    type Plan = RestorePlan;
    type Started = StartedRestore;
    type Operation = String;
    type Outcome = FinalizeOutcome;
    type Error = WorkflowError;

    /// What `start` would do, changing nothing.
    async fn plan(&self, request: &JobRequest) -> Result<RestorePlan, WorkflowError> {
        let pause = workflow::plan_pause(
            self.cluster,
            &self.namespace,
            &self.spec.scale_down_selector,
            &self.spec.lock,
        )
        .await?;
        let m = self
            .spec
            .manifests(&self.namespace, Operation::Restore, request);
        Ok(RestorePlan {
            archive: request.archive.clone(),
            scale_down: pause.scale_down,
            create: m.names(),
            refused: pause.refused,
            request: request.clone(),
        })
    }

    /// The restore Job's name.
    fn operation(&self, plan: &RestorePlan) -> String {
        self.spec.job_name(Operation::Restore, &plan.request.run_id)
    }

    /// Takes the lock, scales the users down (recording their replicas), creates the script,
    /// the credentials, the scratch volume and the Job. If the Job cannot be created, the
    /// volume and credentials are removed and the workloads scaled back up.
    async fn start(
        &self,
        plan: &RestorePlan,
        now: DateTime<Utc>,
        _: &dyn Progress,
    ) -> Result<StartedRestore, WorkflowError> {
        let paused = workflow::pause_workloads(
            self.cluster,
            &self.namespace,
            &self.spec.scale_down_selector,
            &self.spec.lock,
            now,
            self.pods_timeout,
        )
        .await?;
        let m = self
            .spec
            .manifests(&self.namespace, Operation::Restore, &plan.request);
        let created = m.create(self.cluster, &self.namespace).await;
        let job = self.operation(plan);
        if let Err(error) = created {
            self.remove_objects(&job).await;
            self.resume().await?;
            return Err(error.into());
        }
        Ok(StartedRestore { job, paused })
    }

    async fn observe(&self, job: &String) -> Result<RestoreState, WorkflowError> {
        Ok(job_restore_state(
            self.cluster.job_state(&self.namespace, job).await?,
        ))
    }

    /// Watches the Job until it finishes.
    async fn wait(
        &self,
        job: &String,
        timeout: Duration,
        progress: &dyn Progress,
    ) -> Result<RestoreState, WorkflowError> {
        progress.start(&format!("restore Job {job} running"), None);
        let state = self.cluster.wait_job(&self.namespace, job, timeout).await;
        progress.finish();
        Ok(job_restore_state(Some(state?)))
    }

    /// Looks at the Job: while it runs, reports it running and changes nothing. Once it is
    /// done (or gone), collects the logs of a failure, scales the workloads back up from
    /// their annotations and removes the Job, the scratch volume and the credentials. Safe
    /// to run any number of times, from any machine.
    async fn finalize(&self, job: &String) -> Result<FinalizeOutcome, WorkflowError> {
        let state = self.cluster.job_state(&self.namespace, job).await?;
        if state == Some(JobState::Running) {
            return Ok(FinalizeOutcome {
                job_state: state,
                resumed: vec![],
                logs: vec![],
            });
        }
        let logs = match &state {
            Some(JobState::Failed(_)) => self.cluster.job_logs(&self.namespace, job).await?,
            _ => vec![],
        };
        let resumed = self.resume().await?;
        if state.is_some() {
            self.cluster.delete_job(&self.namespace, job).await?;
        }
        self.remove_objects(job).await;
        Ok(FinalizeOutcome {
            job_state: state,
            resumed,
            logs,
        })
    }
}

/// A Job's state as a restore's.
fn job_restore_state(state: Option<JobState>) -> RestoreState {
    match state {
        None => RestoreState::NotFound,
        Some(JobState::Running) => RestoreState::Running {
            message: "the Job runs".into(),
        },
        Some(JobState::Succeeded) => RestoreState::Succeeded,
        Some(JobState::Failed(reason)) => RestoreState::Failed { reason },
    }
}

/// Removes a Job's scratch volume and keys (best effort: the volume may already be gone,
/// and a later finalize tries again).
pub(super) async fn remove_job_objects<C: Cluster + ?Sized>(
    cluster: &C,
    namespace: &str,
    spec: &DataStoreSpec,
    job: &str,
) {
    let mut objects = vec![("Secret", DataStoreSpec::keys_name(job))];
    if matches!(spec.scratch, Scratch::Claim(_)) {
        objects.push(("PersistentVolumeClaim", job.to_owned()));
    }
    for (kind, name) in objects {
        let object = ObjectRef {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some(namespace.to_owned()),
            name,
        };
        if let Err(error) = cluster.delete(&object).await {
            tracing::warn!("could not delete {object}: {error}");
        }
    }
}

#[cfg(test)]
mod tests;
