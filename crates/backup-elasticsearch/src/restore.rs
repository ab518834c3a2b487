//! The Elasticsearch restore workflow of sts-backup, with its lock and scale-down on the core
//! workflow: check the snapshot, scale down, roll the datastream over, delete the live
//! indices the snapshot replaces, start the restore, follow the recovery, scale back up.

use crate::client::{EsClient, encode};
use crate::pattern::IndexPattern;
use crate::snapshots::{SnapshotInfo, check_restorable};
use backup_core::cluster::WorkloadControl;
use backup_core::model::NextStep;
use backup_core::stackstate::ElasticsearchRestore;
use backup_core::workflow::{self, PausedWorkload, RESTORE_IN_PROGRESS, WorkflowError};
use backup_core::{EngineError, Progress};
use chrono::{DateTime, Utc};
use elasticsearch::http::Method;
use serde::Serialize;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The name of the Elasticsearch restore lock.
pub const ELASTICSEARCH: &str = "elasticsearch";

/// Why a restore step failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Elasticsearch refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The lock, scaling or the cluster failed.
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// A step failed after live indices were deleted: the workloads stay scaled down.
    #[error(
        "{error}; live indices were already deleted, so the workloads stay scaled down: restore again, or finalize the restore to scale them up"
    )]
    AfterDelete {
        /// What failed.
        error: EngineError,
        /// The finalize that scales the workloads back up.
        next: NextStep,
    },
}

/// `--rename-pattern` / `--rename-replacement`: restore next to the live indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    /// A regular expression on index names (`sts(.+)`).
    pub pattern: String,
    /// Its replacement (`restored_sts$1`).
    pub replacement: String,
}

/// What to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreRequest {
    /// Indices of the snapshot to restore (a pattern).
    pub indices: String,
    /// Restore a PARTIAL snapshot (its failed shards come back empty).
    pub allow_partial: bool,
    /// Restore under other names, deleting and scaling nothing.
    pub rename: Option<Rename>,
}

/// What a restore will do, computed without changing anything.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EsRestorePlan {
    /// The snapshot.
    pub snapshot: String,
    /// Its state.
    pub state: String,
    /// Indices the restore creates (after renaming).
    pub restore: Vec<String>,
    /// Live indices deleted first.
    pub delete: Vec<String>,
    /// The datastream rolled over first, when one of its backing indices is deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollover: Option<String>,
    /// Workloads scaled down, with their replicas.
    pub scale_down: Vec<(String, i32)>,
    /// Why the restore would be refused now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// A started restore.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartedEsRestore {
    /// Workloads scaled down.
    pub paused: Vec<PausedWorkload>,
    /// Live indices deleted.
    pub deleted: Vec<String>,
    /// The datastream rolled over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_over: Option<String>,
    /// The indices being restored.
    pub targets: Vec<String>,
}

/// One restored index's document count against the count recorded in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexCount {
    /// The restored index.
    pub index: String,
    /// Documents recorded when kbackup took the snapshot (`None`: not recorded, e.g. SLM).
    pub expected: Option<u64>,
    /// Documents in the restored index.
    pub restored: u64,
}

/// What finalizing found and did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EsFinalizeOutcome {
    /// Shards of the snapshot still recovering (`0`: done).
    pub recovering_shards: usize,
    /// Workloads scaled back up (empty while recovering).
    pub resumed: Vec<PausedWorkload>,
}

/// A restore from one repository for the workloads of one namespace.
pub struct EsRestore<'a, C: WorkloadControl + ?Sized> {
    es: &'a EsClient,
    cluster: &'a C,
    namespace: String,
    repository: String,
    settings: ElasticsearchRestore,
    /// How long to wait for scaled-down pods to be gone.
    pub pods_timeout: Duration,
}

/// The snapshot's indices the request selects, each with the name it is restored under.
pub fn restore_pairs(
    snapshot: &SnapshotInfo,
    request: &RestoreRequest,
) -> Result<Vec<(String, String)>, EngineError> {
    let pattern = IndexPattern::parse(&request.indices);
    let rename = match &request.rename {
        Some(r) => Some((
            regex::Regex::new(&r.pattern).map_err(|e| {
                EngineError::Invalid(format!("--rename-pattern '{}': {e}", r.pattern))
            })?,
            r.replacement.as_str(),
        )),
        None => None,
    };
    Ok(snapshot
        .indices
        .iter()
        .filter(|i| pattern.matches(i))
        .map(|i| {
            let target = match &rename {
                Some((regex, replacement)) => regex.replace(i, *replacement).into_owned(),
                None => i.clone(),
            };
            (i.clone(), target)
        })
        .collect())
}

/// The names the restore creates.
pub fn restore_targets(
    snapshot: &SnapshotInfo,
    request: &RestoreRequest,
) -> Result<Vec<String>, EngineError> {
    Ok(restore_pairs(snapshot, request)?
        .into_iter()
        .map(|(_, target)| target)
        .collect())
}

impl<'a, C: WorkloadControl + ?Sized> EsRestore<'a, C> {
    /// A restore from `repository` with the configuration's restore settings.
    pub fn new(
        es: &'a EsClient,
        cluster: &'a C,
        namespace: &str,
        repository: &str,
        settings: ElasticsearchRestore,
    ) -> Self {
        Self {
            es,
            cluster,
            namespace: namespace.to_owned(),
            repository: repository.to_owned(),
            settings,
            pods_timeout: Duration::from_secs(300),
        }
    }

    /// The step that finishes a restore of `snapshot`.
    pub fn finalize_step(&self, snapshot: &str) -> NextStep {
        NextStep::FinalizeRestore {
            namespace: self.namespace.clone(),
            data_store: ELASTICSEARCH.into(),
            operation: Some(snapshot.into()),
        }
    }

    /// Live indices the restore deletes: those with the configured prefixes that the
    /// restore pattern selects (none when renaming).
    async fn to_delete(&self, request: &RestoreRequest) -> Result<Vec<String>, EngineError> {
        if request.rename.is_some() {
            return Ok(vec![]);
        }
        let pattern = IndexPattern::parse(&request.indices);
        let prefixes: Vec<&str> = [
            self.settings.index_prefix.as_str(),
            self.settings.datastream_index_prefix.as_str(),
        ]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
        Ok(self
            .es
            .indices()
            .await?
            .into_iter()
            .filter(|i| prefixes.iter().any(|p| i.starts_with(p)) && pattern.matches(i))
            .collect())
    }

    fn rollover_for(&self, delete: &[String]) -> Option<String> {
        let backing = format!("{}-", self.settings.datastream_index_prefix);
        (!self.settings.datastream_name.is_empty()
            && !self.settings.datastream_index_prefix.is_empty()
            && delete.iter().any(|i| i.starts_with(&backing)))
        .then(|| self.settings.datastream_name.clone())
    }

    /// What `start` would do, changing nothing.
    pub async fn plan(
        &self,
        snapshot: &SnapshotInfo,
        request: &RestoreRequest,
    ) -> Result<EsRestorePlan, RestoreError> {
        let delete = self.to_delete(request).await?;
        let scale_down = if request.rename.is_some() {
            vec![]
        } else {
            self.cluster
                .workloads(&self.namespace, &self.settings.scale_down_label_selector)
                .await
                .map_err(WorkflowError::from)?
                .into_iter()
                .filter(|w| w.replicas > 0)
                .map(|w| (format!("{:?}/{}", w.kind, w.name), w.replicas))
                .collect()
        };
        let locked = self
            .cluster
            .workloads(&self.namespace, "")
            .await
            .map_err(WorkflowError::from)?
            .into_iter()
            .find(|w| {
                w.annotations.get(RESTORE_IN_PROGRESS).map(String::as_str) == Some(ELASTICSEARCH)
            })
            .map(|w| {
                format!(
                    "an Elasticsearch restore is already in progress ({:?} {})",
                    w.kind, w.name
                )
            });
        let refused = check_restorable(snapshot, request.allow_partial)
            .err()
            .map(|e| e.to_string())
            .or(locked.filter(|_| request.rename.is_none()));
        Ok(EsRestorePlan {
            snapshot: snapshot.name.clone(),
            state: snapshot.state.clone(),
            restore: restore_targets(snapshot, request)?,
            rollover: self.rollover_for(&delete),
            delete,
            scale_down,
            refused,
        })
    }

    /// Checks the snapshot, takes the lock and scales down (not when renaming), rolls the
    /// datastream over, deletes the live indices and waits until they are gone, then starts
    /// the restore. A failure before any deletion scales the workloads back up.
    pub async fn start(
        &self,
        snapshot: &SnapshotInfo,
        request: &RestoreRequest,
        now: DateTime<Utc>,
    ) -> Result<StartedEsRestore, RestoreError> {
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
        let delete = match self.to_delete(request).await {
            Ok(delete) => delete,
            Err(error) => return Err(self.undo(error).await),
        };
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
            .call(
                Method::Post,
                &format!(
                    "/_snapshot/{}/{}/_restore",
                    encode(&self.repository),
                    encode(&snapshot.name)
                ),
                &[("wait_for_completion", "false")],
                Some(&body),
            )
            .await
            .and_then(|r| r.ok(&format!("restoring snapshot {}", snapshot.name)));
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

    /// Scales back up after a failure that changed no data.
    async fn undo(&self, error: EngineError) -> RestoreError {
        match self.resume().await {
            Ok(_) => RestoreError::Engine(error),
            Err(resume) => RestoreError::Engine(EngineError::Backend(format!(
                "{error}; scaling back up failed too: {resume}"
            ))),
        }
    }

    async fn resume(&self) -> Result<Vec<PausedWorkload>, WorkflowError> {
        workflow::resume_workloads(
            self.cluster,
            &self.namespace,
            ELASTICSEARCH,
            &self.settings.scale_down_label_selector,
        )
        .await
    }

    /// Follows the recovery of `targets` until every primary shard is active, reporting
    /// shards and bytes; completion is seen within half a second (the health call waits on
    /// the server and answers as soon as the indices are yellow).
    pub async fn wait(
        &self,
        snapshot: &str,
        targets: &[String],
        timeout: Duration,
        progress: &dyn Progress,
    ) -> Result<(), EngineError> {
        if targets.is_empty() {
            return Ok(());
        }
        let joined = targets
            .iter()
            .map(|t| encode(t))
            .collect::<Vec<_>>()
            .join(",");
        let deadline = Instant::now() + timeout;
        let mut shown = 0;
        loop {
            let health = self
                .es
                .call(
                    Method::Get,
                    &format!("/_cluster/health/{joined}"),
                    &[("wait_for_status", "yellow"), ("timeout", "500ms")],
                    None,
                )
                .await?;
            // 408: the server's wait ran out; the body still describes the indices.
            if health.status != 408 {
                let body = health.ok("waiting for the restored indices")?;
                if body["timed_out"] == false {
                    return Ok(());
                }
            }
            let recovery = self.es.recovery(&joined).await?;
            let (done, total) = recovery.bytes();
            if total > 0 {
                if shown == 0 {
                    progress.start("recovering from the snapshot", Some(total));
                }
                progress.advance(done.saturating_sub(shown));
                shown = done.max(shown);
            }
            progress.message(&format!(
                "{} of {} shards done",
                recovery.done_shards(),
                recovery.shards.len()
            ));
            if Instant::now() > deadline {
                return Err(EngineError::Unfinished {
                    reason: format!("the restore did not finish within {}s", timeout.as_secs()),
                    next: self.finalize_step(snapshot),
                });
            }
        }
    }

    /// Restored document counts against those recorded in the snapshot.
    pub async fn compare_counts(
        &self,
        snapshot: &SnapshotInfo,
        request: &RestoreRequest,
    ) -> Result<Vec<IndexCount>, EngineError> {
        let pairs = restore_pairs(snapshot, request)?;
        if pairs.is_empty() {
            return Ok(vec![]);
        }
        let targets: Vec<&str> = pairs.iter().map(|(_, t)| t.as_str()).collect();
        let restored = self.es.doc_counts(&targets.join(",")).await?;
        Ok(pairs
            .into_iter()
            .map(|(source, target)| IndexCount {
                expected: snapshot
                    .doc_counts
                    .as_ref()
                    .and_then(|c| c.get(&source).copied()),
                restored: restored.get(&target).copied().unwrap_or(0),
                index: target,
            })
            .collect())
    }

    /// Looks at the recovery of `snapshot`: while shards recover, waits when `wait` is
    /// given, else reports them and changes nothing; once done, scales the workloads back
    /// up and releases the lock. Idempotent, from any machine (works after sts-backup too).
    pub async fn finalize(
        &self,
        snapshot: &str,
        wait: Option<Duration>,
    ) -> Result<EsFinalizeOutcome, RestoreError> {
        let deadline = wait.map(|w| Instant::now() + w);
        loop {
            let active = self
                .es
                .recovery_active("_all")
                .await?
                .shards
                .iter()
                .filter(|s| s.of_snapshot(&self.repository, snapshot))
                .count();
            if active == 0 {
                let resumed = self.resume().await?;
                return Ok(EsFinalizeOutcome {
                    recovering_shards: 0,
                    resumed,
                });
            }
            match deadline {
                Some(deadline) if Instant::now() < deadline => {
                    // Recovery has no watch API: look again shortly.
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                _ => {
                    return Ok(EsFinalizeOutcome {
                        recovering_shards: active,
                        resumed: vec![],
                    });
                }
            }
        }
    }
}

/// Shard recoveries as `_cat/recovery` shows them.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// One entry per shard.
    pub shards: Vec<ShardRecovery>,
}

/// One shard's recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRecovery {
    /// Index.
    pub index: String,
    /// `snapshot`, `peer`, `existing_store`, ...
    pub kind: String,
    /// `init`, `index`, `translog`, `finalize`, `done`.
    pub stage: String,
    /// Source repository (snapshot recoveries).
    pub repository: String,
    /// Source snapshot.
    pub snapshot: String,
    /// Bytes recovered.
    pub bytes_recovered: u64,
    /// Bytes to recover.
    pub bytes_total: u64,
}

impl ShardRecovery {
    fn of_snapshot(&self, repository: &str, snapshot: &str) -> bool {
        self.kind == "snapshot" && self.repository == repository && self.snapshot == snapshot
    }
}

impl Recovery {
    fn from_cat(body: &Value) -> Self {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let number = |v: &Value| {
            v.as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| v.as_u64())
                .unwrap_or(0)
        };
        let shards = body
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| ShardRecovery {
                        index: text(&r["index"]),
                        kind: text(&r["type"]),
                        stage: text(&r["stage"]),
                        repository: text(&r["repository"]),
                        snapshot: text(&r["snapshot"]),
                        bytes_recovered: number(&r["bytes_recovered"]),
                        bytes_total: number(&r["bytes_total"]),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { shards }
    }

    /// Bytes recovered and to recover, over all shards.
    pub fn bytes(&self) -> (u64, u64) {
        self.shards.iter().fold((0, 0), |(d, t), s| {
            (d + s.bytes_recovered, t + s.bytes_total)
        })
    }

    /// Shards whose recovery is done.
    pub fn done_shards(&self) -> usize {
        self.shards.iter().filter(|s| s.stage == "done").count()
    }
}

impl EsClient {
    /// Every index name, hidden ones included.
    pub async fn indices(&self) -> Result<Vec<String>, EngineError> {
        let body = self
            .call(
                Method::Get,
                "/_cat/indices",
                &[
                    ("format", "json"),
                    ("h", "index"),
                    ("expand_wildcards", "all"),
                ],
                None,
            )
            .await?
            .ok("listing indices")?;
        let mut names: Vec<String> = body
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r["index"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        Ok(names)
    }

    /// Rolls a datastream (or write alias) over to a new write index.
    pub async fn rollover(&self, target: &str) -> Result<(), EngineError> {
        self.call(
            Method::Post,
            &format!("/{}/_rollover", encode(target)),
            &[],
            None,
        )
        .await?
        .ok(&format!("rolling over {target}"))?;
        Ok(())
    }

    /// Deletes an index and waits until `HEAD` says it is gone.
    pub async fn delete_index(&self, index: &str) -> Result<(), EngineError> {
        self.call(
            Method::Delete,
            &format!("/{}", encode(index)),
            &[("expand_wildcards", "all")],
            None,
        )
        .await?
        .ok(&format!("deleting index {index}"))?;
        // The delete is acknowledged once the cluster state dropped the index; check as the
        // reference tool does, without a fixed sleep when it is already gone.
        for _ in 0..100 {
            if !self.index_exists(index).await? {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(EngineError::Backend(format!(
            "index {index} is still there 10 s after its deletion"
        )))
    }

    /// Recoveries of `target` (an index list or `_all`).
    pub async fn recovery(&self, target: &str) -> Result<Recovery, EngineError> {
        self.cat_recovery(target, false).await
    }

    /// Active recoveries only.
    pub async fn recovery_active(&self, target: &str) -> Result<Recovery, EngineError> {
        self.cat_recovery(target, true).await
    }

    async fn cat_recovery(&self, target: &str, active_only: bool) -> Result<Recovery, EngineError> {
        let active = active_only.to_string();
        let body = self
            .call(
                Method::Get,
                &format!("/_cat/recovery/{target}"),
                &[("format", "json"), ("bytes", "b"), ("active_only", &active)],
                None,
            )
            .await?
            .ok("reading shard recoveries")?;
        Ok(Recovery::from_cat(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> SnapshotInfo {
        SnapshotInfo::from_json(&json!({"snapshot": "s1", "state": "SUCCESS",
            "indices": ["sts_a", "sts_b", ".ds-sts_logs-000001", "other"],
            "metadata": {"kbackupDocCounts": {"sts_a": 3}}}))
    }

    #[test]
    fn targets_follow_the_pattern_and_the_rename() {
        let mut request = RestoreRequest {
            indices: "sts*,.ds-sts_logs*".into(),
            allow_partial: false,
            rename: None,
        };
        let targets = restore_targets(&snapshot(), &request).unwrap();
        assert_eq!(targets, [".ds-sts_logs-000001", "sts_a", "sts_b"]);
        request.rename = Some(Rename {
            pattern: "sts_(.+)".into(),
            replacement: "restored_sts_$1".into(),
        });
        request.indices = "sts_*".into();
        let renamed = restore_targets(&snapshot(), &request).unwrap();
        assert_eq!(renamed, ["restored_sts_a", "restored_sts_b"]);
        request.rename.as_mut().unwrap().pattern = "(".into();
        assert!(restore_targets(&snapshot(), &request).is_err());
    }

    #[test]
    fn reads_cat_recovery_rows() {
        let body = json!([
            {"index": "sts_a", "type": "snapshot", "stage": "index", "repository": "r", "snapshot": "s1", "bytes_recovered": "50", "bytes_total": "100"},
            {"index": "sts_b", "type": "snapshot", "stage": "done", "repository": "r", "snapshot": "s1", "bytes_recovered": "10", "bytes_total": "10"},
            {"index": "x", "type": "peer", "stage": "done", "repository": "n/a", "snapshot": "n/a", "bytes_recovered": "1", "bytes_total": "1"}
        ]);
        let r = Recovery::from_cat(&body);
        assert_eq!(r.bytes(), (61, 111));
        assert_eq!(r.done_shards(), 2);
        assert!(r.shards[0].of_snapshot("r", "s1") && !r.shards[2].of_snapshot("r", "s1"));
    }
}
