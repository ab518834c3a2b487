//! A stage's hooks run in order: each attempted up to `1 + maxRetry` times within its
//! timeout, a command in the running pods it selects (one or each) or in a Job of its own
//! (deleted after), an HTTP call answered 2xx. A pre hook that fails stops the ones after it;
//! post hooks run by their execution policy.

use super::plan::{HookStage, PlannedAction, PlannedHook};
use crate::sessions::objects::{managed, object_name};
use crate::sessions::reconcile::JobPlacement;
use backup_api::HookPhase;
use backup_core::ClusterError;
use backup_core::cluster::{
    ApiResourceType, ContainerLog, JobControl, JobState, PodExec, ResourceStore, for_each_page,
};
use backup_core::http::{HttpCaller, HttpRequest};
use serde_json::{Value, json};
use std::time::Duration;

/// The label naming the hook on a hook's Job.
const HOOK_LABEL: &str = "kbackup.io/hook";

/// One hook's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOutcome {
    /// The hook.
    pub name: String,
    /// Succeeded, Failed, or Skipped.
    pub phase: HookPhase,
    /// Attempts made.
    pub attempts: u32,
    /// Why its last attempt failed, or why it was skipped.
    pub error: Option<String>,
}

/// What a stage's hooks run with.
pub struct HookRunner<'a, C: ?Sized> {
    /// The cluster (pods listed and exec'd, Jobs run).
    pub cluster: &'a C,
    /// HTTP calls (none: an HTTP hook fails saying so).
    pub http: Option<&'a dyn HttpCaller>,
    /// The session's namespace: the only one hooks act in.
    pub namespace: &'a str,
    /// The session's name, which its hook Jobs' names start with.
    pub session: &'a str,
    /// Where hook Jobs' pods go.
    pub placement: &'a JobPlacement,
    /// The pause before another attempt of a hook that failed.
    pub retry_delay: Duration,
}

impl<C: ResourceStore + JobControl + PodExec + ?Sized> HookRunner<'_, C> {
    /// Runs `hooks` of `stage`; `succeeded` is the outcome of the work, for post hooks.
    pub async fn run(
        &self,
        stage: HookStage,
        hooks: &[PlannedHook],
        succeeded: bool,
    ) -> Vec<HookOutcome> {
        let mut outcomes = Vec::with_capacity(hooks.len());
        let mut failed_before = false;
        for (index, hook) in hooks.iter().enumerate() {
            let skip = match stage {
                HookStage::Pre if failed_before => Some("an earlier pre hook failed".to_owned()),
                HookStage::Post if !hook.policy.runs_after(succeeded) => Some(format!(
                    "its executionPolicy {:?} (the work {})",
                    hook.policy,
                    if succeeded { "succeeded" } else { "failed" }
                )),
                _ => None,
            };
            if let Some(why) = skip {
                outcomes.push(HookOutcome {
                    name: hook.name.clone(),
                    phase: HookPhase::Skipped,
                    attempts: 0,
                    error: Some(why),
                });
                continue;
            }
            let job = object_name(&[self.session, stage_word(stage), &index.to_string()], 63);
            let outcome = self.attempts(hook, &job).await;
            failed_before |= outcome.phase == HookPhase::Failed;
            tracing::info!(hook = %hook.name, phase = ?outcome.phase, attempts = outcome.attempts, "hook ran");
            outcomes.push(outcome);
        }
        outcomes
    }

    async fn attempts(&self, hook: &PlannedHook, job: &str) -> HookOutcome {
        let mut outcome = HookOutcome {
            name: hook.name.clone(),
            phase: HookPhase::Failed,
            attempts: 0,
            error: None,
        };
        while outcome.attempts <= hook.max_retry {
            if outcome.attempts > 0 {
                tokio::time::sleep(self.retry_delay).await;
            }
            outcome.attempts += 1;
            match self.attempt(hook, job).await {
                Ok(()) => {
                    outcome.phase = HookPhase::Succeeded;
                    outcome.error = None;
                    break;
                }
                Err(error) => outcome.error = Some(error),
            }
        }
        outcome
    }

    /// One attempt; why it failed.
    async fn attempt(&self, hook: &PlannedHook, job: &str) -> Result<(), String> {
        match &hook.action {
            PlannedAction::InPods {
                selector,
                container,
                every,
                command,
            } => {
                let pods = self
                    .running_pods(selector)
                    .await
                    .map_err(|e| e.to_string())?;
                let Some(first) = pods.first() else {
                    return Err(format!(
                        "no running pod in {} matches {selector}",
                        self.namespace
                    ));
                };
                let chosen = if *every {
                    &pods[..]
                } else {
                    std::slice::from_ref(first)
                };
                for pod in chosen {
                    self.exec(pod, container.as_deref(), command, hook.timeout)
                        .await
                        .map_err(|e| format!("pod {pod}: {e}"))?;
                }
                Ok(())
            }
            PlannedAction::InJob {
                image,
                service_account,
                command,
            } => {
                self.job(
                    job,
                    &hook.name,
                    image,
                    service_account.as_deref(),
                    command,
                    hook.timeout,
                )
                .await
            }
            PlannedAction::Http(request) => self.call(request, hook.timeout).await,
        }
    }

    /// The running pods of the namespace with these labels, by name.
    async fn running_pods(&self, selector: &str) -> Result<Vec<String>, ClusterError> {
        let pods = ApiResourceType::namespaced("", "v1", "Pod", "pods");
        let mut names = Vec::new();
        for_each_page(
            self.cluster,
            &pods,
            Some(self.namespace),
            Some(selector),
            500,
            |page| {
                names.extend(
                    page.iter()
                        .filter(|p| is_running(p))
                        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned)),
                )
            },
        )
        .await?;
        names.sort();
        Ok(names)
    }

    async fn exec(
        &self,
        pod: &str,
        container: Option<&str>,
        command: &[String],
        timeout: Duration,
    ) -> Result<(), String> {
        let done = self
            .cluster
            .exec(self.namespace, pod, container, command, timeout)
            .await
            .map_err(|e| e.to_string())?;
        match done.success {
            true => Ok(()),
            false => {
                let said = done.stderr.trim().lines().last().unwrap_or_default();
                Err(match said.is_empty() {
                    true => done.message,
                    false => format!("{}: {said}", done.message),
                })
            }
        }
    }

    /// The command in a Job of its own, waited for at most `timeout`, then deleted.
    async fn job(
        &self,
        name: &str,
        hook: &str,
        image: &str,
        service_account: Option<&str>,
        command: &[String],
        timeout: Duration,
    ) -> Result<(), String> {
        let manifest = hook_job(
            name,
            hook,
            image,
            service_account,
            command,
            timeout,
            self.placement,
        );
        let (cluster, namespace) = (self.cluster, self.namespace);
        // A Job of this name is one of an attempt an operator restart cut short.
        cluster
            .delete_job(namespace, name)
            .await
            .map_err(|e| e.to_string())?;
        cluster
            .create_job(namespace, &manifest)
            .await
            .map_err(|e| format!("Job {name}: {e}"))?;
        let ended = cluster.wait_job(namespace, name, timeout).await;
        let said = match &ended {
            Ok(JobState::Succeeded) => None,
            _ => last_log_line(cluster, namespace, name).await,
        };
        let _ = cluster.delete_job(namespace, name).await;
        let failure = match ended {
            Ok(JobState::Succeeded) => return Ok(()),
            Ok(JobState::Failed(reason)) => format!("Job {name} failed: {reason}"),
            Ok(JobState::Running) | Err(ClusterError::Timeout { .. }) => {
                format!(
                    "Job {name} did not end within {}",
                    humantime::format_duration(timeout)
                )
            }
            Err(error) => format!("Job {name}: {error}"),
        };
        Err(match said {
            Some(line) => format!("{failure}: {line}"),
            None => failure,
        })
    }

    async fn call(&self, request: &HttpRequest, timeout: Duration) -> Result<(), String> {
        let http = self
            .http
            .ok_or("this kbackup runs no HTTP client; HTTP hooks cannot run here")?;
        let response = http
            .call(request, timeout)
            .await
            .map_err(|e| format!("{} {}: {e}", method(request), request.url))?;
        match (200..300).contains(&response.status) {
            true => Ok(()),
            false => {
                let body = response.body.trim().lines().next().unwrap_or_default();
                Err(format!(
                    "{} {} answered {}{}",
                    method(request),
                    request.url,
                    response.status,
                    if body.is_empty() {
                        String::new()
                    } else {
                        format!(": {body}")
                    }
                ))
            }
        }
    }
}

fn method(request: &HttpRequest) -> &'static str {
    match request.method {
        backup_core::http::HttpMethod::Get => "GET",
        backup_core::http::HttpMethod::Post => "POST",
    }
}

fn stage_word(stage: HookStage) -> &'static str {
    match stage {
        HookStage::Pre => "pre-hook",
        HookStage::Post => "post-hook",
    }
}

fn is_running(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running" && pod["metadata"]["deletionTimestamp"].is_null()
}

/// The last line the Job's pods logged.
async fn last_log_line<C: JobControl + ?Sized>(
    cluster: &C,
    namespace: &str,
    job: &str,
) -> Option<String> {
    last_line_of(&cluster.job_logs(namespace, job).await.ok()?)
}

/// The last line `logs` hold (the last container's that logged any), cut to 300 bytes.
pub(crate) fn last_line_of(logs: &[ContainerLog]) -> Option<String> {
    let text = logs
        .iter()
        .rev()
        .find_map(|l| l.text.trim().lines().last().filter(|line| !line.is_empty()))?;
    let mut line = text.to_owned();
    line.truncate(crate::sessions::report::boundary_at_most(text, 300));
    Some(line)
}

/// The manifest of a hook's Job: one attempt, no retry by Kubernetes, stopped at `timeout`.
fn hook_job(
    name: &str,
    hook: &str,
    image: &str,
    service_account: Option<&str>,
    command: &[String],
    timeout: Duration,
    placement: &JobPlacement,
) -> Value {
    let mut pod = json!({
        "restartPolicy": "Never",
        "containers": [{"name": "hook", "image": image, "command": command}],
    });
    if let Some(account) = service_account {
        pod["serviceAccountName"] = json!(account);
    }
    placement.apply_to(&mut pod);
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "labels": managed([(HOOK_LABEL, hook.to_owned())].into()),
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": timeout.as_secs().max(1),
            "template": {"metadata": {"labels": {HOOK_LABEL: hook}}, "spec": pod},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use backup_api::HookExecutionPolicy;
    use backup_core::http::{HttpMethod, HttpResponse};
    use backup_core::testing::FakeCluster;
    use std::collections::BTreeMap;

    fn pod(name: &str, app: &str, phase: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}},
            "status": {"phase": phase},
        })
    }

    fn hook(name: &str, action: PlannedAction, policy: HookExecutionPolicy) -> PlannedHook {
        PlannedHook {
            name: name.into(),
            action,
            max_retry: 1,
            timeout: Duration::from_secs(5),
            policy,
        }
    }

    fn in_pods(command: &str, every: bool) -> PlannedAction {
        PlannedAction::InPods {
            selector: "app=db".into(),
            container: None,
            every,
            command: command.split(' ').map(str::to_owned).collect(),
        }
    }

    /// Answers 200 to `/ok`, 503 otherwise.
    #[derive(Debug)]
    struct Endpoint;

    #[async_trait]
    impl HttpCaller for Endpoint {
        async fn call(&self, request: &HttpRequest, _: Duration) -> Result<HttpResponse, String> {
            let status = if request.url.ends_with("/ok") {
                200
            } else {
                503
            };
            Ok(HttpResponse {
                status,
                body: "busy\nmore".into(),
            })
        }
    }

    fn cluster() -> FakeCluster {
        let cluster = FakeCluster::new();
        cluster.serve("", "v1", "Pod", true);
        for (name, phase) in [
            ("db-1", "Running"),
            ("db-0", "Running"),
            ("db-2", "Pending"),
        ] {
            cluster.insert(&pod(name, "db", phase));
        }
        cluster.insert(&pod("web-0", "web", "Running"));
        cluster
    }

    fn execs(cluster: &FakeCluster) -> Vec<String> {
        cluster
            .calls()
            .into_iter()
            .filter(|c| c.starts_with("exec "))
            .collect()
    }

    #[tokio::test]
    async fn commands_run_in_one_or_every_running_pod_and_a_failed_pre_hook_stops_the_rest() {
        let cluster = cluster();
        let placement = JobPlacement::default();
        let runner = HookRunner {
            cluster: &cluster,
            http: Some(&Endpoint),
            namespace: "shop",
            session: "nightly",
            placement: &placement,
            retry_delay: Duration::ZERO,
        };
        let hooks = [
            hook("flush", in_pods("sync", true), HookExecutionPolicy::Always),
            hook(
                "check",
                in_pods("false x", false),
                HookExecutionPolicy::Always,
            ),
            hook("never", in_pods("echo", false), HookExecutionPolicy::Always),
        ];
        let outcomes = runner.run(HookStage::Pre, &hooks, true).await;
        let phases: Vec<_> = outcomes
            .iter()
            .map(|o| (o.name.as_str(), o.phase, o.attempts))
            .collect();
        assert_eq!(
            phases,
            [
                ("flush", HookPhase::Succeeded, 1),
                ("check", HookPhase::Failed, 2),
                ("never", HookPhase::Skipped, 0),
            ]
        );
        assert_eq!(
            outcomes[1].error.as_deref(),
            Some("pod db-0: command terminated with non-zero exit code: 1: failed")
        );
        assert_eq!(
            execs(&cluster),
            [
                "exec shop/db-0: sync",
                "exec shop/db-1: sync",
                "exec shop/db-0: false x",
                "exec shop/db-0: false x",
            ],
            "running pods only, by name; the failed hook tried 1 + maxRetry times"
        );
    }

    #[tokio::test]
    async fn post_hooks_follow_their_policy_and_http_and_timeouts_fail_saying_why() {
        let cluster = cluster();
        let placement = JobPlacement::default();
        let runner = HookRunner {
            cluster: &cluster,
            http: Some(&Endpoint),
            namespace: "shop",
            session: "nightly",
            placement: &placement,
            retry_delay: Duration::ZERO,
        };
        let get = |url: &str| {
            PlannedAction::Http(HttpRequest {
                method: HttpMethod::Get,
                url: url.into(),
                headers: BTreeMap::new(),
                body: String::new(),
            })
        };
        let hooks = [
            hook(
                "notify",
                get("http://web/ok"),
                HookExecutionPolicy::OnFailure,
            ),
            hook(
                "celebrate",
                get("http://web/ok"),
                HookExecutionPolicy::OnSuccess,
            ),
            hook("busy", get("http://web/flush"), HookExecutionPolicy::Always),
            hook(
                "slow",
                in_pods("sleep 60", false),
                HookExecutionPolicy::Always,
            ),
            hook(
                "none",
                PlannedAction::InPods {
                    selector: "app=gone".into(),
                    container: None,
                    every: false,
                    command: vec!["x".into()],
                },
                HookExecutionPolicy::Always,
            ),
        ];
        let outcomes = runner.run(HookStage::Post, &hooks, false).await;
        let phases: Vec<_> = outcomes.iter().map(|o| o.phase).collect();
        assert_eq!(
            phases,
            [
                HookPhase::Succeeded,
                HookPhase::Skipped,
                HookPhase::Failed,
                HookPhase::Failed,
                HookPhase::Failed
            ],
            "post hooks after a failed one still run"
        );
        assert_eq!(
            outcomes[2].error.as_deref(),
            Some("GET http://web/flush answered 503: busy")
        );
        assert!(
            outcomes[3].error.as_deref().unwrap().contains("timed out"),
            "{:?}",
            outcomes[3].error
        );
        assert_eq!(
            outcomes[4].error.as_deref(),
            Some("no running pod in shop matches app=gone")
        );
        let without_http = HookRunner {
            http: None,
            ..runner
        };
        let outcome = without_http.run(HookStage::Post, &hooks[..1], false).await;
        assert!(
            outcome[0]
                .error
                .as_deref()
                .unwrap()
                .contains("no HTTP client")
        );
    }

    #[tokio::test]
    async fn a_job_hook_that_outlasts_its_timeout_fails_and_its_job_is_deleted() {
        let cluster = cluster();
        let placement = JobPlacement {
            node_selector: BTreeMap::from([("kind".to_owned(), "real".to_owned())]),
            tolerations: vec!["real".into()],
        };
        let runner = HookRunner {
            cluster: &cluster,
            http: None,
            namespace: "shop",
            session: "nightly",
            placement: &placement,
            retry_delay: Duration::ZERO,
        };
        let action = PlannedAction::InJob {
            image: "toolbox".into(),
            service_account: Some("hooks".into()),
            command: vec!["sh".into(), "-c".into(), "true".into()],
        };
        let outcomes = runner
            .run(
                HookStage::Pre,
                &[hook("job", action, HookExecutionPolicy::Always)],
                true,
            )
            .await;
        assert_eq!(outcomes[0].phase, HookPhase::Failed);
        let error = outcomes[0].error.as_deref().unwrap();
        assert!(
            error.starts_with("Job nightly-pre-hook-0 did not end within 5s"),
            "{error}"
        );
        assert!(cluster.jobs("shop").is_empty(), "the hook's Job is deleted");
        let created = cluster
            .calls()
            .iter()
            .filter(|c| c.as_str() == "create Job/nightly-pre-hook-0")
            .count();
        assert_eq!(created, 2, "1 + maxRetry attempts");
        let manifest = hook_job(
            "j",
            "job",
            "toolbox",
            Some("hooks"),
            &["true".into()],
            Duration::from_secs(5),
            &placement,
        );
        let pod = &manifest["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "hooks");
        assert_eq!(pod["nodeSelector"]["kind"], "real");
        assert_eq!(manifest["spec"]["backoffLimit"], 0);
        assert_eq!(manifest["spec"]["activeDeadlineSeconds"], 5);
    }
}
