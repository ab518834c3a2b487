//! Running Jobs: create, follow, collect logs, clean up.

use crate::KubeCluster;
use crate::error::convert;
use async_trait::async_trait;
use backup_core::ClusterError;
use backup_core::cluster::{ContainerLog, JobControl, JobState};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, LogParams, PostParams, PropagationPolicy};
use kube::runtime::wait::await_condition;
use std::time::Duration;

/// The state a Job's conditions say it is in.
fn state(job: &Job) -> JobState {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_ref());
    for condition in conditions
        .into_iter()
        .flatten()
        .filter(|c| c.status == "True")
    {
        match condition.type_.as_str() {
            "Complete" => return JobState::Succeeded,
            "Failed" => {
                let reason = [condition.reason.as_deref(), condition.message.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": ");
                return JobState::Failed(if reason.is_empty() {
                    "failed".into()
                } else {
                    reason
                });
            }
            _ => {}
        }
    }
    JobState::Running
}

#[async_trait]
impl JobControl for KubeCluster {
    async fn create_job(
        &self,
        namespace: &str,
        manifest: &serde_json::Value,
    ) -> Result<(), ClusterError> {
        let job: Job = serde_json::from_value(manifest.clone())
            .map_err(|e| ClusterError::Invalid(format!("Job manifest: {e}")))?;
        let api: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        let name = job.metadata.name.clone().unwrap_or_default();
        api.create(&PostParams::default(), &job)
            .await
            .map_err(|e| convert(&format!("Job {namespace}/{name}"), e))?;
        Ok(())
    }

    async fn job_state(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<JobState>, ClusterError> {
        let api: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        let job = api
            .get_opt(name)
            .await
            .map_err(|e| convert(&format!("Job {namespace}/{name}"), e))?;
        Ok(job.as_ref().map(state))
    }

    async fn wait_job(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<JobState, ClusterError> {
        let api: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        let what = format!("Job {namespace}/{name}");
        let finished = |job: Option<&Job>| job.is_some_and(|j| state(j) != JobState::Running);
        let job = tokio::time::timeout(timeout, await_condition(api, name, finished))
            .await
            .map_err(|_| ClusterError::Timeout {
                what: format!("{what} to finish"),
                after: timeout,
            })?
            .map_err(|e| ClusterError::Api(format!("{what}: {e}")))?;
        job.as_ref().map(state).ok_or(ClusterError::NotFound(what))
    }

    async fn job_logs(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<ContainerLog>, ClusterError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let selector = format!("job-name={name}");
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| convert(&format!("pods of Job {namespace}/{name}"), e))?;
        let mut logs = Vec::new();
        for pod in list.items {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            let spec = pod.spec.unwrap_or_default();
            let containers = spec
                .init_containers
                .unwrap_or_default()
                .into_iter()
                .chain(spec.containers)
                .map(|c| c.name);
            for container in containers {
                let params = LogParams {
                    container: Some(container.clone()),
                    ..LogParams::default()
                };
                let text = match pods.logs(&pod_name, &params).await {
                    Ok(text) => text,
                    Err(e) => format!(
                        "<logs unavailable: {}>",
                        convert(&format!("pod {pod_name}"), e)
                    ),
                };
                logs.push(ContainerLog {
                    pod: pod_name.clone(),
                    container,
                    text,
                });
            }
        }
        Ok(logs)
    }

    async fn last_log_line(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        max_bytes: usize,
    ) -> Result<String, ClusterError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: Some(container.to_owned()),
            tail_lines: Some(1),
            limit_bytes: Some(i64::try_from(max_bytes).unwrap_or(i64::MAX)),
            ..LogParams::default()
        };
        pods.logs(pod, &params)
            .await
            .map_err(|e| convert(&format!("log of {namespace}/{pod} {container}"), e))
    }

    async fn delete_job(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        let api: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(convert(&format!("Job {namespace}/{name}"), e)),
        }
    }
}
