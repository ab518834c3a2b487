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
    async fn doc_counts(&self, pattern: &str) -> Result<BTreeMap<String, u64>, EngineError> {
        EsClient::doc_counts(self, pattern).await
    }
}
