//! The Elasticsearch restore as a [`RestoreEngine`]: plan, start (lock, scale down, roll
//! over, delete the live indices, start the snapshot restore), observe and wait (the
//! recovery), finalize (scale back up, release the lock).

use crate::restore::{
    ELASTICSEARCH, EsFinalizeOutcome, EsOperation, EsRestore, EsRestorePlan, RestoreError,
    SnapshotRestore, StartedEsRestore, restore_targets,
};
use crate::restore_api::RestoreApi;
use crate::snapshots::check_restorable;
use async_trait::async_trait;
use backup_core::cluster::WorkloadControl;
use backup_core::engine::{RestoreEngine, RestoreState};
use backup_core::workflow::{self, PausePlan};
use backup_core::{EngineError, Progress};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::time::{Duration, Instant};

/// How often a wait looks at the recovery again (it has no watch API).
const POLL: Duration = Duration::from_millis(250);

impl<C: WorkloadControl + ?Sized, A: RestoreApi + ?Sized> EsRestore<'_, C, A> {
    /// Shards of `snapshot` still recovering: those listed as recovering from it, or, when
    /// more, those its restore in the cluster's state has not finished (a restore just
    /// accepted lists no recovery yet).
    async fn recovering(&self, snapshot: &str) -> Result<usize, EngineError> {
        let listed = self
            .es
            .recovery("_all", true)
            .await?
            .shards
            .iter()
            .filter(|s| s.of_snapshot(&self.repository, snapshot))
            .count();
        let restoring = self.es.restoring(&self.repository, snapshot).await?;
        Ok(listed.max(restoring))
    }

    /// Shards of `operation`'s snapshot still recovering and, when its targets are known, the
    /// first target without a finished recovery from it: one listing either way (the active
    /// recoveries alone, or all of them when the targets must be matched).
    async fn recovery_of(
        &self,
        operation: &EsOperation,
    ) -> Result<(usize, Option<String>), EngineError> {
        if operation.targets.is_empty() {
            return Ok((self.recovering(&operation.snapshot).await?, None));
        }
        let recovery = self.es.recovery("_all", false).await?;
        let of_snapshot: Vec<_> = recovery
            .shards
            .iter()
            .filter(|s| s.of_snapshot(&self.repository, &operation.snapshot))
            .collect();
        // `active_only` lists exactly the recoveries not in stage `done`.
        let recovering = of_snapshot.iter().filter(|s| s.stage != "done").count();
        let unrecovered = operation.targets.iter().find(|target| {
            let shards: Vec<_> = of_snapshot.iter().filter(|s| &s.index == *target).collect();
            shards.is_empty() || shards.iter().any(|s| s.stage != "done")
        });
        Ok((recovering, unrecovered.cloned()))
    }

    /// Reports the recovery of `targets` on `progress`; `shown` is the byte count shown so far.
    async fn report(
        &self,
        targets: &[String],
        shown: &mut u64,
        progress: &dyn Progress,
    ) -> Result<(), EngineError> {
        let recovery = self.es.recovery(&targets.join(","), false).await?;
        let (done, total) = recovery.bytes();
        if total > 0 {
            if *shown == 0 {
                progress.start("recovering from the snapshot", Some(total));
            }
            progress.advance(done.saturating_sub(*shown));
            *shown = done.max(*shown);
        }
        progress.message(&format!(
            "{} of {} shards done",
            recovery.done_shards(),
            recovery.shards.len()
        ));
        Ok(())
    }
}

#[async_trait]
impl<C: WorkloadControl + ?Sized, A: RestoreApi + ?Sized> RestoreEngine for EsRestore<'_, C, A> {
    type Request = SnapshotRestore;
    type Plan = EsRestorePlan;
    type Started = StartedEsRestore;
    type Operation = EsOperation;
    type Outcome = EsFinalizeOutcome;
    type Error = RestoreError;

    /// What `start` would do, changing nothing.
    async fn plan(&self, source: &SnapshotRestore) -> Result<EsRestorePlan, RestoreError> {
        let (snapshot, request) = (&source.snapshot, &source.request);
        let delete = self.to_delete(request).await?;
        // A restore under other names deletes nothing, so pauses nothing and takes no lock.
        let pause = match &request.rename {
            Some(_) => PausePlan {
                scale_down: vec![],
                refused: None,
            },
            None => {
                let selector = &self.settings.scale_down_label_selector;
                workflow::plan_pause(self.cluster, &self.namespace, selector, ELASTICSEARCH).await?
            }
        };
        let refused = check_restorable(snapshot, request.allow_partial)
            .err()
            .map(|e| e.to_string())
            .or(pause.refused);
        Ok(EsRestorePlan {
            snapshot: snapshot.name.clone(),
            state: snapshot.state.clone(),
            restore: restore_targets(snapshot, request)?,
            rollover: self.rollover_for(&delete),
            delete,
            scale_down: pause.scale_down,
            refused,
            source: source.clone(),
        })
    }

    fn operation(&self, plan: &EsRestorePlan) -> EsOperation {
        EsOperation {
            snapshot: plan.snapshot.clone(),
            targets: plan.restore.clone(),
        }
    }

    /// Checks the snapshot, takes the lock and scales down (not when renaming), rolls the
    /// datastream over, deletes the live indices and waits until they are gone, then starts
    /// the restore. A failure before any deletion scales the workloads back up.
    async fn start(
        &self,
        plan: &EsRestorePlan,
        now: DateTime<Utc>,
        _: &dyn Progress,
    ) -> Result<StartedEsRestore, RestoreError> {
        let (snapshot, request) = (&plan.source.snapshot, &plan.source.request);
        check_restorable(snapshot, request.allow_partial)?;
        let targets = restore_targets(snapshot, request)?;
        let paused = if request.rename.is_some() {
            vec![]
        } else {
            workflow::pause_workloads(
                self.cluster,
                &self.namespace,
                &self.settings.scale_down_label_selector,
                ELASTICSEARCH,
                now,
                self.pods_timeout,
            )
            .await?
        };
        // The plan shown is the plan run: an index that appeared since would have to be
        // deleted too, which nobody saw, so the restore stops; one gone since is skipped.
        let live = match self.to_delete(request).await {
            Ok(live) => live,
            Err(error) => return Err(self.undo(error).await),
        };
        let unplanned: Vec<&str> = live
            .iter()
            .filter(|index| !plan.delete.contains(index))
            .map(String::as_str)
            .collect();
        if !unplanned.is_empty() {
            let error = EngineError::Invalid(format!(
                "live indices appeared since the plan and would be deleted too: {}; nothing was deleted: plan the restore again",
                unplanned.join(", ")
            ));
            return Err(self.undo(error).await);
        }
        let delete: Vec<String> = plan
            .delete
            .iter()
            .filter(|index| live.contains(index))
            .cloned()
            .collect();
        let rolled_over = self.rollover_for(&delete);
        if let Some(datastream) = &rolled_over
            && let Err(error) = self.es.rollover(datastream).await
        {
            return Err(self.undo(error).await);
        }
        let after_delete = |error: EngineError| RestoreError::AfterDelete {
            error,
            next: self.finalize_step(&snapshot.name),
        };
        for (n, index) in delete.iter().enumerate() {
            if let Err(error) = self.es.delete_index(index).await {
                return Err(if n == 0 {
                    self.undo(error).await
                } else {
                    after_delete(error)
                });
            }
        }
        let mut body = json!({
            "indices": request.indices,
            "include_global_state": false,
            "ignore_unavailable": true,
            "partial": request.allow_partial,
        });
        if let Some(rename) = &request.rename {
            body["rename_pattern"] = json!(rename.pattern);
            body["rename_replacement"] = json!(rename.replacement);
        }
        let started = self
            .es
            .restore_snapshot(&self.repository, &snapshot.name, &body)
            .await;
        if let Err(error) = started {
            return Err(if delete.is_empty() {
                self.undo(error).await
            } else {
                after_delete(error)
            });
        }
        Ok(StartedEsRestore {
            paused,
            deleted: delete,
            rolled_over,
            targets,
        })
    }

    /// Running while a shard of the snapshot recovers, or (when the targets are known) until
    /// each target has a recovery from the snapshot and all of them are done: a look too
    /// early, before every shard's recovery is registered, does not pass for the end.
    async fn observe(&self, operation: &EsOperation) -> Result<RestoreState, RestoreError> {
        let (recovering, unrecovered) = self.recovery_of(operation).await?;
        if recovering > 0 {
            return Ok(RestoreState::Running {
                message: format!("{recovering} shard(s) recovering"),
            });
        }
        if let Some(waiting) = unrecovered {
            return Ok(RestoreState::Running {
                message: format!("index {waiting} not recovered yet"),
            });
        }
        Ok(RestoreState::Succeeded)
    }

    /// Follows the recovery until it is over, reporting shards and bytes; completion is seen
    /// within half a second (the health call waits on the server and answers as soon as the
    /// indices are yellow).
    async fn wait(
        &self,
        operation: &EsOperation,
        timeout: Duration,
        progress: &dyn Progress,
    ) -> Result<RestoreState, RestoreError> {
        let deadline = Instant::now() + timeout;
        let mut shown = 0;
        loop {
            let active = operation.targets.is_empty()
                || self
                    .es
                    .primaries_active(&operation.targets, Duration::from_millis(500))
                    .await?;
            if active {
                let state = self.observe(operation).await?;
                if state.is_over() {
                    progress.finish();
                    return Ok(state);
                }
                tokio::time::sleep(POLL).await;
            } else {
                self.report(&operation.targets, &mut shown, progress)
                    .await?;
            }
            if Instant::now() > deadline {
                progress.finish();
                return Err(RestoreError::Engine(EngineError::Unfinished {
                    reason: format!("the restore did not finish within {}s", timeout.as_secs()),
                    next: self.finalize_step(&operation.snapshot),
                }));
            }
        }
    }

    /// While shards of the snapshot recover, reports them and changes nothing; once done,
    /// scales the workloads back up and releases the lock. Idempotent, from any machine
    /// (works after sts-backup too).
    async fn finalize(&self, operation: &EsOperation) -> Result<EsFinalizeOutcome, RestoreError> {
        let recovering = self.recovering(&operation.snapshot).await?;
        if recovering > 0 {
            return Ok(EsFinalizeOutcome {
                recovering_shards: recovering,
                resumed: vec![],
            });
        }
        let resumed = self.resume().await?;
        Ok(EsFinalizeOutcome {
            recovering_shards: 0,
            resumed,
        })
    }
}

#[cfg(test)]
mod tests;
