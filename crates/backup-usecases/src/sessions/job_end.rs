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
    /// of a log).
    pub fn last_line(&self) -> Option<&str> {
        self.message
            .as_deref()
            .and_then(|m| m.lines().rev().find(|l| !l.trim().is_empty()))
            .map(str::trim)
    }

    /// [`JobEnd::last_line`], or else what the end condition says.
    pub fn last_words(&self) -> String {
        self.last_line()
            .map_or_else(|| self.why.clone(), str::to_owned)
    }

    /// What the end condition says, then the last line of the message: the whole of why a
    /// Job ended without what it should have left (past its deadline, and where it was).
    pub fn account(&self) -> String {
        match self.last_line() {
            Some(line) => format!("{} {line}", self.why),
            None => self.why.clone(),
        }
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

/// A Job of the fake cluster ended as the kubelet and the Job controller leave it: its pod's
/// container `container` terminated with `message`, the Job Complete.
#[cfg(test)]
pub(crate) fn end_job(
    cluster: &backup_core::testing::FakeCluster,
    namespace: &str,
    name: &str,
    container: &str,
    message: &str,
) {
    let mut job = cluster.object("Job", Some(namespace), name).unwrap();
    job["status"] = serde_json::json!({"conditions": [{"type": "Complete", "status": "True"}]});
    cluster.insert(&job);
    cluster.insert(&serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("{name}-x1"), "namespace": namespace,
            "labels": {"job-name": name}},
        "status": {"containerStatuses": [{"name": container,
            "state": {"terminated": {"exitCode": 0, "message": message}}}]}}));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ended_job_is_told_by_its_last_line_or_its_condition_or_both() {
        let end = JobEnd {
            succeeded: false,
            why: "DeadlineExceeded: Job was active longer than specified deadline".into(),
            message: Some("reading /data\nerror: write failed\n\n".into()),
        };
        assert_eq!(end.last_words(), "error: write failed");
        assert_eq!(
            end.account(),
            "DeadlineExceeded: Job was active longer than specified deadline error: write failed"
        );
        let silent = JobEnd {
            message: None,
            ..end
        };
        assert_eq!(silent.last_words(), silent.why);
        assert_eq!(silent.account(), silent.why);
    }
}
