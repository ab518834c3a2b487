//! What a snapshot restore asks of Elasticsearch, as a trait: [`EsClient`] is the real one;
//! the engine's unit tests use one held in memory.

use crate::client::{EsClient, encode};
use crate::recovery::Recovery;
use async_trait::async_trait;
use backup_core::EngineError;
use elasticsearch::http::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// The index and snapshot calls of a restore.
#[async_trait]
pub trait RestoreApi: Send + Sync {
    /// Every index name, hidden ones included, sorted.
    async fn indices(&self) -> Result<Vec<String>, EngineError>;
    /// Rolls a datastream (or write alias) over to a new write index.
    async fn rollover(&self, target: &str) -> Result<(), EngineError>;
    /// Deletes an index and returns once it is gone.
    async fn delete_index(&self, index: &str) -> Result<(), EngineError>;
    /// Starts restoring `snapshot` of `repository` as `body` says, without waiting.
    async fn restore_snapshot(
        &self,
        repository: &str,
        snapshot: &str,
        body: &Value,
    ) -> Result<(), EngineError>;
    /// Whether every primary shard of `indices` is active, waiting up to `wait`.
    async fn primaries_active(
        &self,
        indices: &[String],
        wait: Duration,
    ) -> Result<bool, EngineError>;
    /// Shard recoveries of `target` (`_all`, or indices), or the active ones only.
    async fn recovery(&self, target: &str, active_only: bool) -> Result<Recovery, EngineError>;
    /// Shards of a restore of `snapshot` from `repository` the cluster still runs (its state
    /// lists a restore from the moment it is accepted, before any shard recovery shows), 0
    /// when there is none.
    async fn restoring(&self, repository: &str, snapshot: &str) -> Result<usize, EngineError>;
    /// Document counts of the indices matching `pattern`.
    async fn doc_counts(&self, pattern: &str) -> Result<BTreeMap<String, u64>, EngineError>;
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

    /// Recoveries of `target` (an index list or `_all`), or the active ones only.
    pub async fn recovery(&self, target: &str, active_only: bool) -> Result<Recovery, EngineError> {
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

    /// Shards not yet restored of the restore of `snapshot` in the cluster's state, 0 when
    /// the state lists no such restore (done, or never started).
    pub async fn restoring(&self, repository: &str, snapshot: &str) -> Result<usize, EngineError> {
        let body = self
            .call(
                Method::Get,
                "/_cluster/state/customs",
                &[(
                    "filter_path",
                    "restore.snapshots.snapshot,restore.snapshots.repository,restore.snapshots.shards.state",
                )],
                None,
            )
            .await?
            .ok("reading the restores in progress")?;
        Ok(unfinished_restore_shards(&body, repository, snapshot))
    }

    /// Starts restoring `snapshot` with `body` (indices, renames), without waiting.
    pub async fn restore_snapshot(
        &self,
        repository: &str,
        snapshot: &str,
        body: &Value,
    ) -> Result<(), EngineError> {
        self.call(
            Method::Post,
            &format!(
                "/_snapshot/{}/{}/_restore",
                encode(repository),
                encode(snapshot)
            ),
            &[("wait_for_completion", "false")],
            Some(body),
        )
        .await?
        .ok(&format!("restoring snapshot {snapshot}"))?;
        Ok(())
    }

    /// Whether every primary shard of `indices` is active (the indices are yellow), waiting
    /// up to `wait` on the server, which answers as soon as they are.
    pub async fn primaries_active(
        &self,
        indices: &[String],
        wait: Duration,
    ) -> Result<bool, EngineError> {
        let joined = indices
            .iter()
            .map(|t| encode(t))
            .collect::<Vec<_>>()
            .join(",");
        let timeout = format!("{}ms", wait.as_millis());
        let health = self
            .call(
                Method::Get,
                &format!("/_cluster/health/{joined}"),
                &[("wait_for_status", "yellow"), ("timeout", &timeout)],
                None,
            )
            .await?;
        // 408: the server's wait ran out; the body still describes the indices.
        if health.status == 408 {
            return Ok(false);
        }
        Ok(health.ok("waiting for the restored indices")?["timed_out"] == false)
    }
}

#[async_trait]
impl RestoreApi for EsClient {
    async fn indices(&self) -> Result<Vec<String>, EngineError> {
        EsClient::indices(self).await
    }
    async fn rollover(&self, target: &str) -> Result<(), EngineError> {
        EsClient::rollover(self, target).await
    }
    async fn delete_index(&self, index: &str) -> Result<(), EngineError> {
        EsClient::delete_index(self, index).await
    }
    async fn restore_snapshot(
        &self,
        repository: &str,
        snapshot: &str,
        body: &Value,
    ) -> Result<(), EngineError> {
        EsClient::restore_snapshot(self, repository, snapshot, body).await
    }
    async fn primaries_active(
        &self,
        indices: &[String],
        wait: Duration,
    ) -> Result<bool, EngineError> {
        EsClient::primaries_active(self, indices, wait).await
    }
    async fn recovery(&self, target: &str, active_only: bool) -> Result<Recovery, EngineError> {
        EsClient::recovery(self, target, active_only).await
    }
    async fn restoring(&self, repository: &str, snapshot: &str) -> Result<usize, EngineError> {
        EsClient::restoring(self, repository, snapshot).await
    }
    async fn doc_counts(&self, pattern: &str) -> Result<BTreeMap<String, u64>, EngineError> {
        EsClient::doc_counts(self, pattern).await
    }
}

/// Shards of the restore of `snapshot` from `repository` in a cluster state's `restore`
/// section that are not over (`SUCCESS` or `FAILURE`); an entry listing no shards yet
/// counts as one. Anything unexpected in the body reads as no restore.
fn unfinished_restore_shards(state: &Value, repository: &str, snapshot: &str) -> usize {
    let Some(restores) = state["restore"]["snapshots"].as_array() else {
        return 0;
    };
    restores
        .iter()
        .filter(|r| r["repository"] == repository && r["snapshot"] == snapshot)
        .map(|r| {
            let shards = r["shards"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            let open = shards
                .iter()
                .filter(|s| !matches!(s["state"].as_str(), Some("SUCCESS" | "FAILURE")))
                .count();
            if shards.is_empty() { 1 } else { open }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::unfinished_restore_shards;
    use serde_json::json;

    #[test]
    fn a_restore_in_the_cluster_state_counts_its_open_shards() {
        let state = json!({"restore": {"snapshots": [
            {"snapshot": "nightly", "repository": "sts", "shards": [
                {"state": "INIT"}, {"state": "SUCCESS"}, {"state": "STARTED"}, {"state": "FAILURE"}
            ]},
            {"snapshot": "other", "repository": "sts", "shards": [{"state": "INIT"}]},
            {"snapshot": "nightly", "repository": "elsewhere", "shards": [{"state": "INIT"}]},
        ]}});
        assert_eq!(unfinished_restore_shards(&state, "sts", "nightly"), 2);
        let accepted =
            json!({"restore": {"snapshots": [{"snapshot": "nightly", "repository": "sts"}]}});
        assert_eq!(unfinished_restore_shards(&accepted, "sts", "nightly"), 1);
        assert_eq!(unfinished_restore_shards(&json!({}), "sts", "nightly"), 0);
        assert_eq!(
            unfinished_restore_shards(&json!({"restore": 3}), "sts", "nightly"),
            0
        );
    }
}
