//! The Elasticsearch restore workflow of sts-backup, with its lock and scale-down on the core
//! workflow: check the snapshot, scale down, roll the datastream over, delete the live
//! indices the snapshot replaces, start the restore, follow the recovery, scale back up.

use crate::client::EsClient;
use crate::pattern::IndexPattern;
use crate::restore_api::RestoreApi;
use crate::snapshots::SnapshotInfo;
use backup_core::EngineError;
use backup_core::cluster::WorkloadControl;
use backup_core::model::NextStep;
use backup_core::stackstate::ElasticsearchRestore;
use backup_core::workflow::{self, PausedWorkload, WorkflowError};
use serde::{Deserialize, Serialize};
use std::time::Duration;

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

/// A snapshot and what to restore of it: the request of the
/// [`RestoreEngine`](backup_core::RestoreEngine).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRestore {
    /// The snapshot, as described by Elasticsearch.
    pub snapshot: SnapshotInfo,
    /// What to restore of it.
    pub request: RestoreRequest,
}

/// A started restore, as a later finalize finds it: the snapshot, and the indices it
/// restores when known (a finalize from the snapshot's name alone follows its recoveries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EsOperation {
    /// The snapshot's name.
    pub snapshot: String,
    /// The indices being restored (after renaming).
    #[serde(default)]
    pub targets: Vec<String>,
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
    /// The snapshot and request `start` runs.
    #[serde(skip)]
    pub source: SnapshotRestore,
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

/// A restore from one repository for the workloads of one namespace; a
/// [`RestoreEngine`](backup_core::RestoreEngine) (see `engine.rs`).
pub struct EsRestore<'a, C: WorkloadControl + ?Sized, A: RestoreApi + ?Sized = EsClient> {
    pub(crate) es: &'a A,
    pub(crate) cluster: &'a C,
    pub(crate) namespace: String,
    pub(crate) repository: String,
    pub(crate) settings: ElasticsearchRestore,
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

impl<'a, C: WorkloadControl + ?Sized, A: RestoreApi + ?Sized> EsRestore<'a, C, A> {
    /// A restore from `repository` with the configuration's restore settings.
    pub fn new(
        es: &'a A,
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
    pub(crate) async fn to_delete(
        &self,
        request: &RestoreRequest,
    ) -> Result<Vec<String>, EngineError> {
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

    pub(crate) fn rollover_for(&self, delete: &[String]) -> Option<String> {
        let backing = format!("{}-", self.settings.datastream_index_prefix);
        (!self.settings.datastream_name.is_empty()
            && !self.settings.datastream_index_prefix.is_empty()
            && delete.iter().any(|i| i.starts_with(&backing)))
        .then(|| self.settings.datastream_name.clone())
    }

    /// Scales back up after a failure that changed no data.
    pub(crate) async fn undo(&self, error: EngineError) -> RestoreError {
        match self.resume().await {
            Ok(_) => RestoreError::Engine(error),
            Err(resume) => RestoreError::Engine(EngineError::Backend(format!(
                "{error}; scaling back up failed too: {resume}"
            ))),
        }
    }

    pub(crate) async fn resume(&self) -> Result<Vec<PausedWorkload>, WorkflowError> {
        workflow::resume_workloads(
            self.cluster,
            &self.namespace,
            ELASTICSEARCH,
            &self.settings.scale_down_label_selector,
        )
        .await
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
