//! A StackGraph backup now: the chart's backup Job, run as sts-backup runs it, writing an
//! archive named as the chart's CronJob names them, into the installation's archive bucket.

use super::{DataStore, Installation, SpecOptions, StackStateError};
use backup_core::cluster::{Cluster, JobState};
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

/// Why a backup Job of `data_store` is not a backup, if it is not: it failed, did not end, or
/// succeeded without writing anything (`wrote` empty). The one verdict the session Jobs and
/// the command line give.
pub fn backup_failure(
    job: &str,
    state: &JobState,
    wrote: &str,
    data_store: &str,
) -> Option<String> {
    match state {
        JobState::Failed(reason) => Some(format!("the backup Job {job} failed: {reason}")),
        JobState::Running => Some(format!("the backup Job {job} did not end")),
        JobState::Succeeded if wrote.is_empty() => Some(format!(
            "the backup Job {job} succeeded, but no new {data_store} backup is listed"
        )),
        JobState::Succeeded => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_a_backup_only_when_it_succeeded_and_wrote_something() {
        let ok = backup_failure("j", &JobState::Succeeded, "a.sty", "settings");
        assert_eq!(ok, None);
        let empty = backup_failure("j", &JobState::Succeeded, "", "settings").unwrap();
        assert!(
            empty.contains("no new settings backup is listed"),
            "{empty}"
        );
        let failed = backup_failure("j", &JobState::Failed("oom".into()), "x", "settings");
        assert_eq!(failed.unwrap(), "the backup Job j failed: oom");
        assert!(backup_failure("j", &JobState::Running, "x", "settings").is_some());
    }
}
