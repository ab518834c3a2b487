//! How a Job the operator started ended, as the cluster says it: its Complete or Failed
//! condition and the termination message of its container (a report, or the end of its log).

use super::reconcile::list_all;
use crate::volumes::pod_type;
use backup_core::ClusterError;
use backup_core::cluster::{ObjectRef, ResourceStore};

/// Where a Job is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobProgress {
    /// There is no such Job.
    Gone,
    /// It has not ended.
    Running,
    /// It ended.
    Ended(JobEnd),
}

/// A Job that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEnd {
    /// It completed (its container exited 0).
    pub succeeded: bool,
    /// What its end condition says (`BackoffLimitExceeded: Job has reached the specified
    /// backoff limit`, `DeadlineExceeded: ...`).
    pub why: String,
    /// Its container's termination message, when it left one.
    pub message: Option<String>,
}

impl JobEnd {
    /// The last line of the termination message that is not blank (an error, at the end
    /// of a log), or else what the end condition says.
    pub fn last_words(&self) -> String {
        self.message
            .as_deref()
            .and_then(|m| m.lines().rev().find(|l| !l.trim().is_empty()))
            .map_or_else(|| self.why.clone(), |line| line.trim().to_owned())
    }
}

/// Where the Job `namespace/name` is, and the termination message of its `container` once
/// it ended.
pub async fn job_progress<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    name: &str,
    container: &str,
) -> Result<JobProgress, ClusterError> {
    let Some(job) = cluster
        .get(&ObjectRef::namespaced("batch/v1", "Job", namespace, name))
        .await?
    else {
        return Ok(JobProgress::Gone);
    };
    let ended = job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True");
    let Some(ended) = ended else {
        return Ok(JobProgress::Running);
    };
    let selector = format!("job-name={name}");
    let pods = list_all(cluster, &pod_type(), Some(namespace), Some(&selector)).await?;
    let message = pods.iter().find_map(|pod| {
        pod["status"]["containerStatuses"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == container)?["state"]["terminated"]["message"]
            .as_str()
            .map(str::to_owned)
    });
    let reason = ended["reason"].as_str().unwrap_or_default();
    let why = match ended["message"].as_str() {
        Some(text) if !reason.is_empty() => format!("{reason}: {text}"),
        Some(text) => text.to_owned(),
        None if !reason.is_empty() => reason.to_owned(),
        None => "it failed".to_owned(),
    };
    Ok(JobProgress::Ended(JobEnd {
        succeeded: ended["type"] == "Complete",
        why,
        message,
    }))
}
