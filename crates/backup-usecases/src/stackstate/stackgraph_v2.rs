//! StackGraph v2's steps on the running system, after a live restore: the backfill that
//! loads the historic data, and the abort that ends an unfinished backfill and keeps what
//! was loaded. Neither scales anything; both need the system up, so neither runs while a
//! restore holds StackGraph's lock.

use super::{Installation, StackStateError};
use backup_core::cluster::Cluster;
use backup_core::workflow;
use backup_k8s::datastore::{JobOutcome, JobRequest, JobRun, Operation, stackgraph_v2_spec};
use std::time::Duration;

/// A StackGraph v2 step on the running system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackfillStep {
    /// Load the historic data of the backup restored live (again, after an interruption).
    Backfill,
    /// End an unfinished backfill, keeping the data loaded so far.
    Abort,
}

impl BackfillStep {
    fn operation(self) -> Operation {
        match self {
            BackfillStep::Backfill => Operation::Backfill,
            BackfillStep::Abort => Operation::Abort,
        }
    }
}

/// A step ready to run: its Job is named before it starts, so an interruption can say
/// which Job carries on.
pub struct PreparedStep<'a, C: Cluster> {
    run: JobRun<'a, C>,
    request: JobRequest,
    operation: Operation,
}

impl<C: Cluster> PreparedStep<'_, C> {
    /// The name of the Job `run` creates.
    pub fn job(&self) -> String {
        self.run.job_name(self.operation, &self.request)
    }

    /// Runs the step's Job to its end and removes it (its logs are in the outcome when it
    /// failed). A Job still running when `timeout` passes is left running.
    pub async fn run(&self, timeout: Duration) -> Result<JobOutcome, StackStateError> {
        Ok(self.run.run(self.operation, &self.request, timeout).await?)
    }
}

impl<C: Cluster> Installation<C> {
    /// Prepares `step`: refused while a restore holds StackGraph's lock (a live restore not
    /// yet finalized, a StackGraph or settings restore), as the system must be up.
    /// `storage_endpoint` replaces the in-cluster MinIO Service, as for the restore.
    pub async fn prepare_backfill_step(
        &self,
        step: BackfillStep,
        storage_endpoint: Option<&str>,
    ) -> Result<PreparedStep<'_, C>, StackStateError> {
        let operation = step.operation();
        let spec = stackgraph_v2_spec(&self.config, storage_endpoint, false, operation)?;
        workflow::ensure_unlocked(
            &self.cluster,
            &self.namespace,
            &spec.scale_down_selector,
            &spec.lock,
        )
        .await?;
        Ok(PreparedStep {
            run: JobRun::new(&self.cluster, &self.namespace, spec),
            request: self.job_request(String::new())?,
            operation,
        })
    }
}
