//! Hooks that make a volume's data consistent for its backup: commands run in a container
//! of the pod that uses it, before its movers (freeze, flush) and after them (unfreeze),
//! in seed 004's HookInfo shape (`maxRetry`, `timeout`, `executionPolicy`).

use super::target::WorkloadRef;
use backup_api::HookExecutionPolicy as ExecutionPolicy;
use backup_core::cluster::PodExec;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One hook.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hook {
    /// Its name, in reports.
    pub name: String,
    /// Only in the pods of this workload (`KIND/NAME`); in every pod when absent.
    #[serde(default)]
    pub workload: Option<String>,
    /// The container (the pod's first when absent).
    #[serde(default)]
    pub container: Option<String>,
    /// The command and its arguments (no shell unless it names one).
    pub command: Vec<String>,
    /// Seconds one attempt may take.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Attempts after a failed one.
    #[serde(default)]
    pub max_retry: u32,
    /// When it runs (post-backup hooks only).
    #[serde(default)]
    pub execution_policy: ExecutionPolicy,
}

fn default_timeout() -> u64 {
    30
}

/// The hooks of a volume backup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupHooks {
    /// Run in each pod before its volumes are backed up; one that fails fails the pod's
    /// volumes (they are not backed up).
    #[serde(default)]
    pub pre_backup: Vec<Hook>,
    /// Run in each pod after its volumes, by their execution policy.
    #[serde(default)]
    pub post_backup: Vec<Hook>,
}

/// The most attempts after a failure a hook may ask for.
const MAX_RETRY: u32 = 10;

impl BackupHooks {
    /// Reads hooks from YAML (`preBackup: [...]`, `postBackup: [...]`), checked.
    pub fn parse(yaml: &str) -> Result<Self, String> {
        let hooks: Self = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
        for (stage, list) in [
            ("preBackup", &hooks.pre_backup),
            ("postBackup", &hooks.post_backup),
        ] {
            for hook in list.iter() {
                let at = format!("{stage} hook '{}'", hook.name);
                if hook.name.is_empty() {
                    return Err(format!("a {stage} hook has no name"));
                }
                if hook.command.is_empty() {
                    return Err(format!("{at} has no command"));
                }
                if let Some(workload) = &hook.workload {
                    WorkloadRef::parse(workload).map_err(|e| format!("{at}: workload {e}"))?;
                }
                if hook.timeout == 0 {
                    return Err(format!("{at}: timeout must be at least 1 second"));
                }
                if hook.max_retry > MAX_RETRY {
                    return Err(format!("{at}: maxRetry is at most {MAX_RETRY}"));
                }
                if stage == "preBackup" && hook.execution_policy != ExecutionPolicy::Always {
                    return Err(format!(
                        "{at}: executionPolicy is for postBackup hooks (a preBackup hook always runs)"
                    ));
                }
            }
        }
        Ok(hooks)
    }

    /// Whether there is no hook.
    pub fn is_empty(&self) -> bool {
        self.pre_backup.is_empty() && self.post_backup.is_empty()
    }
}

/// Before or after the volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HookStage {
    /// Before.
    PreBackup,
    /// After.
    PostBackup,
}

/// A hook's outcome in one pod (seed 004's `status.hooks.preHooks[]` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookRun {
    /// The hook.
    pub name: String,
    /// Before or after.
    pub stage: HookStage,
    /// The pod.
    pub pod: String,
    /// Whether it succeeded (`false` also when it was not run by its policy: see `skipped`).
    pub succeeded: bool,
    /// Not run, by its execution policy.
    pub skipped: bool,
    /// Attempts made.
    pub attempts: u32,
    /// Why its last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Runs the hooks of a stage that apply to `workload` in `pod`, in order; a pre-backup hook
/// that fails stops the others. `succeeded`: the volumes' outcome, for post-backup hooks.
pub(crate) async fn run_hooks<E: PodExec + ?Sized>(
    exec: &E,
    namespace: &str,
    pod: &str,
    workload: &WorkloadRef,
    stage: HookStage,
    hooks: &[Hook],
    succeeded: bool,
) -> Vec<HookRun> {
    let mut runs = Vec::new();
    let applies = |hook: &&Hook| {
        hook.workload
            .as_deref()
            .is_none_or(|w| WorkloadRef::parse(w).is_ok_and(|w| &w == workload))
    };
    for hook in hooks.iter().filter(applies) {
        let mut run = HookRun {
            name: hook.name.clone(),
            stage,
            pod: pod.to_owned(),
            succeeded: false,
            skipped: false,
            attempts: 0,
            error: None,
        };
        if stage == HookStage::PostBackup && !hook.execution_policy.runs_after(succeeded) {
            run.skipped = true;
            runs.push(run);
            continue;
        }
        while run.attempts <= hook.max_retry && !run.succeeded {
            run.attempts += 1;
            let outcome = exec
                .exec(
                    namespace,
                    pod,
                    hook.container.as_deref(),
                    &hook.command,
                    Duration::from_secs(hook.timeout),
                )
                .await;
            match outcome {
                Ok(done) if done.success => {
                    run.succeeded = true;
                    run.error = None;
                }
                Ok(done) => {
                    let stderr = done.stderr.trim();
                    run.error = Some(match stderr.is_empty() {
                        true => done.message,
                        false => format!("{}: {}", done.message, last_line(stderr)),
                    });
                }
                Err(error) => run.error = Some(error.to_string()),
            }
        }
        let failed = !run.succeeded;
        runs.push(run);
        if failed && stage == HookStage::PreBackup {
            break;
        }
    }
    runs
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use backup_core::ClusterError;
    use backup_core::cluster::ExecOutcome;
    use std::sync::Mutex;

    /// Fails the commands whose first word is `fail`, and records every command.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    #[async_trait]
    impl PodExec for Recorder {
        async fn exec(
            &self,
            _namespace: &str,
            pod: &str,
            _container: Option<&str>,
            command: &[String],
            _timeout: Duration,
        ) -> Result<ExecOutcome, ClusterError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("{pod}: {}", command.join(" ")));
            let success = command[0] != "fail";
            Ok(ExecOutcome {
                success,
                message: if success {
                    String::new()
                } else {
                    "exit code 1".into()
                },
                stdout: String::new(),
                stderr: if success {
                    String::new()
                } else {
                    "it broke\n".into()
                },
            })
        }

        async fn container_log(
            &self,
            _namespace: &str,
            _pod: &str,
            _container: &str,
        ) -> Result<String, ClusterError> {
            Ok(String::new())
        }
    }

    const HOOKS: &str = r#"
preBackup:
- name: freeze
  command: [fail, now]
  maxRetry: 2
- name: never
  command: [echo]
postBackup:
- name: unfreeze
  command: [unfreeze]
- name: on-success
  command: [celebrate]
  executionPolicy: OnSuccess
- name: on-failure
  workload: sts/db
  command: [alarm]
  executionPolicy: OnFailure
- name: other
  workload: deployment/web
  command: [other]
"#;

    #[tokio::test]
    async fn a_failing_pre_hook_is_retried_then_stops_and_post_hooks_follow_their_policy() {
        let hooks = BackupHooks::parse(HOOKS).unwrap();
        let db = WorkloadRef::parse("sts/db").unwrap();
        let exec = Recorder::default();
        let pre = run_hooks(
            &exec,
            "ns",
            "db-0",
            &db,
            HookStage::PreBackup,
            &hooks.pre_backup,
            true,
        )
        .await;
        assert_eq!(pre.len(), 1, "the hook after a failed one is not run");
        assert_eq!((pre[0].attempts, pre[0].succeeded), (3, false));
        assert_eq!(pre[0].error.as_deref(), Some("exit code 1: it broke"));
        let post = run_hooks(
            &exec,
            "ns",
            "db-0",
            &db,
            HookStage::PostBackup,
            &hooks.post_backup,
            false,
        )
        .await;
        let ran: Vec<(&str, bool)> = post.iter().map(|r| (r.name.as_str(), r.skipped)).collect();
        assert_eq!(
            ran,
            [
                ("unfreeze", false),
                ("on-success", true),
                ("on-failure", false)
            ]
        );
        assert_eq!(
            *exec.0.lock().unwrap(),
            [
                "db-0: fail now",
                "db-0: fail now",
                "db-0: fail now",
                "db-0: unfreeze",
                "db-0: alarm"
            ]
        );
    }

    #[test]
    fn hooks_are_checked() {
        for bad in [
            "preBackup: [{name: x, command: []}]",
            "preBackup: [{name: x, command: [a], executionPolicy: OnFailure}]",
            "postBackup: [{name: x, command: [a], workload: job/x}]",
            "postBackup: [{name: x, command: [a], timeout: 0}]",
            "postBackup: [{name: x, command: [a], maxRetry: 99}]",
            "postBackup: [{name: x, command: [a], unknown: 1}]",
            "other: []",
        ] {
            assert!(BackupHooks::parse(bad).is_err(), "{bad}");
        }
        let one = BackupHooks::parse("postBackup: [{name: x, command: [a]}]").unwrap();
        assert_eq!(one.post_backup[0].timeout, 30);
        assert!(!one.is_empty());
    }
}
