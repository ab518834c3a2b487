//! A stage's hooks run and written into a session's status: `hooks.preHooks` or
//! `hooks.postHooks` (name and phase, seed 004) and one condition per stage
//! (`PreRestoreHooksExecutionSucceeded`, `PostBackupHooksExecutionSucceeded`...) whose message
//! says why a hook failed or was skipped.

use super::plan::{HookStage, PlannedHook, plan_hooks};
use super::run::{HookOutcome, HookRunner};
use crate::sessions::reconcile::condition;
use backup_api::{ConditionStatus, HookInfo, HookPhase, HookStatus};
use backup_core::ClusterError;
use backup_core::cluster::{JobControl, PodExec, ResourceStore};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// What a session's hooks surround.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookedWork {
    /// A BackupSession.
    Backup,
    /// A RestoreSession.
    Restore,
}

impl HookedWork {
    fn word(self) -> &'static str {
        match self {
            Self::Backup => "Backup",
            Self::Restore => "Restore",
        }
    }
}

/// Runs a stage's hooks (nothing when there are none) and writes their outcome into `status`
/// (a session's status as JSON); whether none failed. `now` moves on by the time they took.
#[allow(clippy::too_many_arguments)]
pub async fn run_stage<C: ResourceStore + JobControl + PodExec + ?Sized>(
    runner: &HookRunner<'_, C>,
    work: HookedWork,
    stage: HookStage,
    hooks: &[PlannedHook],
    succeeded: bool,
    status: &mut Value,
    now: &mut DateTime<Utc>,
) -> bool {
    if hooks.is_empty() {
        return true;
    }
    let started = std::time::Instant::now();
    let outcomes = runner.run(stage, hooks, succeeded).await;
    // Hooks take time: what follows them happens that much later.
    *now += chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
    record(work, stage, &outcomes, status, *now)
}

/// Plans the post hooks `infos` (their templates read again: one deleted since the start
/// fails them, saying so) and runs them by the work's outcome (`succeeded`), into `status`;
/// whether none failed.
#[allow(clippy::too_many_arguments)]
pub async fn run_post_hooks<C: ResourceStore + JobControl + PodExec + ?Sized>(
    cluster: &C,
    runner: &HookRunner<'_, C>,
    namespace: &str,
    work: HookedWork,
    infos: &[HookInfo],
    succeeded: bool,
    status: &mut Value,
    now: &mut DateTime<Utc>,
) -> Result<bool, ClusterError> {
    let hooks = match plan_hooks(cluster, namespace, HookStage::Post, infos).await? {
        Ok(hooks) => hooks,
        Err(error) => {
            let work = work.word();
            let mut conditions = status["conditions"].as_array().cloned().unwrap_or_default();
            conditions.push(json!(condition(
                &format!("Post{work}HooksExecutionSucceeded"),
                ConditionStatus::False,
                &format!("FailedToExecutePost{work}Hooks"),
                error.message,
                *now,
            )));
            status["conditions"] = json!(conditions);
            return Ok(false);
        }
    };
    let stage = HookStage::Post;
    Ok(run_stage(runner, work, stage, &hooks, succeeded, status, now).await)
}

/// Writes `outcomes` into `status`; whether none failed.
pub fn record(
    work: HookedWork,
    stage: HookStage,
    outcomes: &[HookOutcome],
    status: &mut Value,
    now: DateTime<Utc>,
) -> bool {
    let statuses: Vec<HookStatus> = outcomes
        .iter()
        .map(|o| HookStatus {
            name: o.name.clone(),
            phase: o.phase,
        })
        .collect();
    let (field, when) = match stage {
        HookStage::Pre => ("preHooks", "Pre"),
        HookStage::Post => ("postHooks", "Post"),
    };
    if !status["hooks"].is_object() {
        status["hooks"] = json!({});
    }
    status["hooks"][field] = json!(statuses);
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| o.phase == HookPhase::Failed)
        .map(|o| {
            format!(
                "{} failed after {} attempt{}: {}",
                o.name,
                o.attempts,
                if o.attempts == 1 { "" } else { "s" },
                o.error.as_deref().unwrap_or("no reason given")
            )
        })
        .collect();
    let skipped: Vec<String> = outcomes
        .iter()
        .filter(|o| o.phase == HookPhase::Skipped)
        .map(|o| {
            format!(
                "{} skipped: {}",
                o.name,
                o.error.as_deref().unwrap_or_default()
            )
        })
        .collect();
    let work = work.word();
    let (state, reason, mut message) = match failed.is_empty() {
        true => (
            ConditionStatus::True,
            format!("SuccessfullyExecuted{when}{work}Hooks"),
            format!(
                "{when}-{} hooks have been executed successfully.",
                work.to_lowercase()
            ),
        ),
        false => (
            ConditionStatus::False,
            format!("FailedToExecute{when}{work}Hooks"),
            failed.join("; "),
        ),
    };
    if !skipped.is_empty() {
        message = format!("{message} ({})", skipped.join("; "));
    }
    let mut conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    let kind = format!("{when}{work}HooksExecutionSucceeded");
    conditions.retain(|c| c["type"] != kind.as_str());
    conditions.push(json!(condition(&kind, state, &reason, message, now)));
    status["conditions"] = json!(conditions);
    failed.is_empty()
}
