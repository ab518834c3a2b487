//! Running one mover: its Secret and Job created, followed until the Job ends (or its pod
//! cannot start), its log read, and both removed whatever happened.

use super::manifests::{MOVER_CONTAINER, MoverJob};
use super::mover::REPORT_MARKER;
use backup_core::ClusterError;
use backup_core::cluster::{JobControl, JobState, ObjectRef, ResourceStore};
use backup_core::workflow::launch_job;
use std::time::{Duration, Instant};

/// How often a running mover is looked at: a twentieth of the time it has run, within these
/// bounds (a short mover is seen to end soon after it does, a long one is not asked about
/// every second for hours).
const POLL_MIN: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(5);

/// The log lines kept of a failed mover.
const LOG_TAIL: usize = 40;

/// How a mover ended.
#[derive(Debug, Clone)]
pub struct MoverRun {
    /// Its log.
    pub log: String,
    /// Why it failed, when it did.
    pub failure: Option<String>,
}

impl MoverRun {
    /// The last lines of its log, for a failure's report.
    pub fn log_tail(&self) -> Vec<String> {
        let lines: Vec<&str> = self.log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL)..]
            .iter()
            .map(|l| (*l).to_owned())
            .collect()
    }
}

/// Runs a mover; errors are the cluster's, a mover that fails is a [`MoverRun`] with its
/// failure.
pub async fn run_mover<C: ResourceStore + JobControl + ?Sized>(
    cluster: &C,
    mover: &MoverJob,
    start_timeout: Duration,
    timeout: Duration,
) -> Result<MoverRun, ClusterError> {
    let outcome = follow(cluster, mover, start_timeout, timeout).await;
    let log = match cluster.job_logs(&mover.namespace, &mover.name).await {
        Ok(logs) => logs
            .into_iter()
            .filter(|l| l.container == MOVER_CONTAINER)
            .map(|l| l.text)
            .collect::<Vec<_>>()
            .join("\n"),
        Err(error) => format!("<logs unavailable: {error}>"),
    };
    let deleted_job = cluster.delete_job(&mover.namespace, &mover.name).await;
    let secret = ObjectRef::namespaced("v1", "Secret", &mover.namespace, &mover.name);
    let deleted_secret = cluster.delete(&secret).await;
    let failure = outcome?;
    deleted_job?;
    deleted_secret?;
    Ok(MoverRun { log, failure })
}

/// Starts the Job with its Secret owned by it (whoever deletes the Job, kbackup, its TTL or
/// a person, deletes the Secret with it), and waits for its end: `Some(reason)` when it
/// failed or could not start.
async fn follow<C: ResourceStore + JobControl + ?Sized>(
    cluster: &C,
    mover: &MoverJob,
    start_timeout: Duration,
    timeout: Duration,
) -> Result<Option<String>, ClusterError> {
    let (namespace, name) = (mover.namespace.as_str(), mover.name.as_str());
    launch_job(cluster, namespace, &mover.job, &[&mover.secret]).await?;
    let started = Instant::now();
    let mut running = false;
    loop {
        match cluster.job_state(namespace, name).await? {
            None => return Ok(Some(format!("Job {namespace}/{name} disappeared"))),
            Some(JobState::Succeeded) => return Ok(None),
            Some(JobState::Failed(reason)) => {
                return Ok(Some(format!("the mover failed: {reason}")));
            }
            Some(JobState::Running) => {}
        }
        let pods = job_pods(cluster, namespace, name).await?;
        if pods.iter().any(exited_cleanly) || reported(cluster, namespace, &pods).await {
            return Ok(None);
        }
        if !running && started.elapsed() >= start_timeout {
            match not_started(&pods) {
                Some(reason) => {
                    return Ok(Some(format!(
                        "the mover pod did not start within {}s: {reason}",
                        start_timeout.as_secs()
                    )));
                }
                None => running = true,
            }
        }
        if started.elapsed() >= timeout {
            return Ok(Some(format!(
                "the mover did not finish within {}s",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep((started.elapsed() / 20).clamp(POLL_MIN, POLL_MAX)).await;
    }
}

/// The pods of a mover's Job (one; a few when a node lost one).
async fn job_pods<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    job: &str,
) -> Result<Vec<serde_json::Value>, ClusterError> {
    let selector = format!("job-name={job}");
    let page = cluster
        .list_page(
            &super::pod_type(),
            Some(namespace),
            Some(&selector),
            10,
            None,
        )
        .await?;
    Ok(page.items)
}

/// Whether a mover has printed its report, its last act: known a second or more before its
/// pod's status says it exited (the kubelet looks at its containers once a second). Its log
/// is asked for only once the mover container's status says it started, as the API server
/// serves a container's log only then.
async fn reported<C: JobControl + ?Sized>(
    cluster: &C,
    namespace: &str,
    pods: &[serde_json::Value],
) -> bool {
    for pod in pods {
        let ended = matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        );
        let started = pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["name"] == MOVER_CONTAINER)
            .any(|c| {
                c["state"]
                    .get("running")
                    .or(c["state"].get("terminated"))
                    .is_some()
            });
        if let (false, true, Some(name)) = (ended, started, pod["metadata"]["name"].as_str()) {
            // A log not readable now (a node slow to answer) is no report yet: the Job's
            // state still decides.
            let line = cluster
                .last_log_line(namespace, name, MOVER_CONTAINER, REPORT_MARKER.len())
                .await
                .unwrap_or_default();
            if line.starts_with(REPORT_MARKER) {
                return true;
            }
        }
    }
    false
}

/// Whether a mover pod has ended well: the Job's condition says so two seconds or more
/// later (the kubelet first sets the pod's phase, then the Job controller takes the pod's
/// finalizer off), while the container's exit code 0 is known at once.
fn exited_cleanly(pod: &serde_json::Value) -> bool {
    let containers = pod["status"]["containerStatuses"].as_array();
    pod["status"]["phase"] == "Succeeded"
        || containers.is_some_and(|all| {
            !all.is_empty()
                && all
                    .iter()
                    .all(|c| c["state"]["terminated"]["exitCode"].as_i64() == Some(0))
        })
}

/// Why the Job's pod has not started, `None` when it has.
fn not_started(pods: &[serde_json::Value]) -> Option<String> {
    let Some(first) = pods.first() else {
        return Some("the Job made no pod (a quota or an admission rule may refuse it)".into());
    };
    let started = pods.iter().any(|pod| {
        matches!(
            pod["status"]["phase"].as_str(),
            Some("Running" | "Succeeded" | "Failed")
        )
    });
    (!started).then(|| pending_reason(first))
}

/// What a pending pod's status says of why.
fn pending_reason(pod: &serde_json::Value) -> String {
    let status = &pod["status"];
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    if let Some(waiting) = status["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|c| c["state"]["waiting"].as_object())
    {
        let reason = text(&waiting.get("reason").cloned().unwrap_or_default());
        let message = text(&waiting.get("message").cloned().unwrap_or_default());
        return [reason, message]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(": ");
    }
    if let Some(condition) = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["status"] == "False" && c["message"].is_string())
    {
        return format!(
            "{}: {}",
            text(&condition["reason"]),
            text(&condition["message"])
        );
    }
    match pod["spec"]["nodeName"].as_str() {
        Some(node) => format!("pending on node {node}"),
        None => {
            "not scheduled, and the scheduler gives no reason (a claim waiting for its volume?)"
                .into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pending_pod_says_why() {
        let unschedulable = json!({"status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/3 nodes are available: 1 node(s) had untolerated taint"}]}});
        assert_eq!(
            pending_reason(&unschedulable),
            "Unschedulable: 0/3 nodes are available: 1 node(s) had untolerated taint"
        );
        let pulling = json!({"status": {"phase": "Pending", "containerStatuses": [
            {"state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}]}});
        assert_eq!(pending_reason(&pulling), "ErrImagePull: not found");
        assert!(pending_reason(&json!({})).starts_with("not scheduled"));
        let placed = json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Pending"}});
        assert_eq!(pending_reason(&placed), "pending on node n1");
    }

    #[test]
    fn a_mover_pod_has_ended_well_once_its_containers_exited_0() {
        let exited = |codes: &[i64]| {
            let statuses: Vec<_> = codes
                .iter()
                .map(|c| json!({"state": {"terminated": {"exitCode": c}}}))
                .collect();
            json!({"status": {"phase": "Running", "containerStatuses": statuses}})
        };
        assert!(exited_cleanly(&exited(&[0])));
        assert!(!exited_cleanly(&exited(&[0, 1])));
        assert!(!exited_cleanly(&exited(&[])));
        let running = json!({"status": {"phase": "Running", "containerStatuses": [
            {"state": {"running": {}}}]}});
        assert!(!exited_cleanly(&running));
        assert!(exited_cleanly(&json!({"status": {"phase": "Succeeded"}})));
    }

    mockall::mock! {
        Jobs {}
        #[async_trait::async_trait]
        impl JobControl for Jobs {
            async fn create_job(&self, namespace: &str, manifest: &serde_json::Value) -> Result<(), ClusterError>;
            async fn job_state(&self, namespace: &str, name: &str) -> Result<Option<JobState>, ClusterError>;
            async fn wait_job(&self, namespace: &str, name: &str, timeout: Duration) -> Result<JobState, ClusterError>;
            async fn job_logs(&self, namespace: &str, name: &str) -> Result<Vec<backup_core::cluster::ContainerLog>, ClusterError>;
            async fn last_log_line(&self, namespace: &str, pod: &str, container: &str, max_bytes: usize) -> Result<String, ClusterError>;
            async fn delete_job(&self, namespace: &str, name: &str) -> Result<(), ClusterError>;
        }
    }

    #[tokio::test]
    async fn a_started_mover_has_reported_once_its_last_log_line_is_the_report() {
        let with_state = |phase: &str, state: &str| {
            vec![
                json!({"metadata": {"name": "m-1"}, "status": {"phase": phase,
                "containerStatuses": [{"name": MOVER_CONTAINER, "state": {state: {}}}]}}),
            ]
        };
        let on_node = |phase: &str| with_state(phase, "running");
        let mut jobs = MockJobs::new();
        jobs.expect_last_log_line()
            .withf(|ns, pod, container, max| {
                (ns, pod, container, *max) == ("ns", "m-1", MOVER_CONTAINER, REPORT_MARKER.len())
            })
            .times(3)
            .returning({
                let mut lines = vec![
                    Ok(format!("{REPORT_MARKER}{{\"files\": 1}}\n")),
                    Ok("reading /data\n".into()),
                    Err(ClusterError::Api("the node did not answer".into())),
                ];
                move |_, _, _, _| lines.pop().unwrap_or(Ok(String::new()))
            });
        // Unreadable (a node slow to answer), then an ordinary line while the pod's phase
        // still says Pending, then the report.
        assert!(!reported(&jobs, "ns", &on_node("Pending")).await);
        assert!(!reported(&jobs, "ns", &on_node("Pending")).await);
        assert!(reported(&jobs, "ns", &on_node("Running")).await);
        // A mover container not started yet (or of no status), or a pod that ended, is not
        // asked for its log.
        let unplaced = vec![json!({"metadata": {"name": "m-1"}, "status": {"phase": "Pending"}})];
        assert!(!reported(&jobs, "ns", &unplaced).await);
        assert!(!reported(&jobs, "ns", &with_state("Pending", "waiting")).await);
        assert!(!reported(&jobs, "ns", &on_node("Failed")).await);
    }

    #[test]
    fn a_log_tail_is_its_last_lines() {
        let log = (1..=50)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        let run = MoverRun { log, failure: None };
        let tail = run.log_tail();
        assert_eq!(
            (tail.len(), tail[0].as_str(), tail[39].as_str()),
            (40, "11", "50")
        );
    }
}
