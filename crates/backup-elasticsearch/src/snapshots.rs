//! Snapshots of one repository: list, describe, take, delete; document counts.

use crate::client::{EsClient, encode};
use backup_core::EngineError;
use backup_core::model::NextStep;
use chrono::{DateTime, Utc};
use elasticsearch::http::Method;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Where kbackup records the document counts of the indices it snapshots (snapshot
/// `metadata`), to compare them after a restore.
pub const DOC_COUNTS_METADATA: &str = "kbackupDocCounts";

/// A snapshot to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSnapshot {
    /// Its name.
    pub name: String,
    /// The indices (a pattern).
    pub indices: String,
    /// Return once it is done.
    pub wait: bool,
    /// Take it even when some primary shards are unavailable (the result is PARTIAL).
    pub partial: bool,
}

/// One snapshot as Elasticsearch describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    /// Its name.
    pub name: String,
    /// `SUCCESS`, `PARTIAL`, `FAILED`, `IN_PROGRESS`, `INCOMPATIBLE`.
    pub state: String,
    /// When it started.
    pub start: Option<DateTime<Utc>>,
    /// When it ended.
    pub end: Option<DateTime<Utc>>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The indices in it.
    pub indices: Vec<String>,
    /// Shards in it.
    pub shards_total: u64,
    /// Shards stored whole.
    pub shards_successful: u64,
    /// Shards that failed.
    pub shards_failed: u64,
    /// Why shards failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// Document counts per index recorded by kbackup when it took the snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_counts: Option<BTreeMap<String, u64>>,
}

fn millis(value: &Value) -> Option<DateTime<Utc>> {
    value.as_i64().and_then(DateTime::from_timestamp_millis)
}

impl SnapshotInfo {
    /// Reads one entry of `GET _snapshot/<repo>/...`.
    pub fn from_json(value: &Value) -> Self {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut indices = strings(&value["indices"]);
        indices.sort();
        let failures = value["failures"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| {
                        format!(
                            "{}[{}]: {}",
                            f["index"].as_str().unwrap_or("?"),
                            f["shard_id"],
                            f["reason"].as_str().unwrap_or("?")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let doc_counts = value["metadata"][DOC_COUNTS_METADATA]
            .as_object()
            .map(|counts| {
                counts
                    .iter()
                    .filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
                    .collect()
            });
        Self {
            name: value["snapshot"].as_str().unwrap_or_default().to_owned(),
            state: value["state"].as_str().unwrap_or_default().to_owned(),
            start: millis(&value["start_time_in_millis"]),
            end: millis(&value["end_time_in_millis"]),
            duration_ms: value["duration_in_millis"].as_u64().unwrap_or(0),
            indices,
            shards_total: value["shards"]["total"].as_u64().unwrap_or(0),
            shards_successful: value["shards"]["successful"].as_u64().unwrap_or(0),
            shards_failed: value["shards"]["failed"].as_u64().unwrap_or(0),
            failures,
            doc_counts,
        }
    }
}

impl EsClient {
    /// Every snapshot of the repository, newest first by start time.
    pub async fn snapshots(&self, repository: &str) -> Result<Vec<SnapshotInfo>, EngineError> {
        let body = self
            .call(
                Method::Get,
                &format!("/_snapshot/{}/_all", encode(repository)),
                &[],
                None,
            )
            .await?
            .ok(&format!("listing the snapshots of repository {repository}"))?;
        repository_failures(&body, repository)?;
        let mut snapshots: Vec<SnapshotInfo> = body["snapshots"]
            .as_array()
            .map(|a| a.iter().map(SnapshotInfo::from_json).collect())
            .unwrap_or_default();
        snapshots.sort_by(|a, b| b.start.cmp(&a.start).then_with(|| b.name.cmp(&a.name)));
        Ok(snapshots)
    }

    /// One snapshot.
    pub async fn snapshot(
        &self,
        repository: &str,
        name: &str,
    ) -> Result<SnapshotInfo, EngineError> {
        let body = self
            .call(
                Method::Get,
                &format!("/_snapshot/{}/{}", encode(repository), encode(name)),
                &[],
                None,
            )
            .await?
            .ok(&format!("snapshot {name} in repository {repository}"))?;
        repository_failures(&body, repository)?;
        body["snapshots"][0]
            .as_object()
            .map(|_| SnapshotInfo::from_json(&body["snapshots"][0]))
            .ok_or_else(|| {
                EngineError::NotFound(format!("snapshot {name} in repository {repository}"))
            })
    }

    /// Document counts of the primaries of the indices matching `pattern`, after a refresh.
    /// Red indices (a primary unavailable) are left out: they cannot be refreshed or counted.
    pub async fn doc_counts(&self, pattern: &str) -> Result<BTreeMap<String, u64>, EngineError> {
        let listed = self
            .call(
                Method::Get,
                &format!("/_cat/indices/{}", encode(pattern)),
                &[
                    ("format", "json"),
                    ("h", "index,health"),
                    ("expand_wildcards", "all"),
                ],
                None,
            )
            .await?;
        // No index matches: nothing to count.
        if listed.status == 404 {
            return Ok(BTreeMap::new());
        }
        let listed = listed.ok(&format!("listing {pattern}"))?;
        let countable: Vec<String> = listed
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter(|r| r["health"] != "red")
                    .filter_map(|r| r["index"].as_str().map(encode))
                    .collect()
            })
            .unwrap_or_default();
        if countable.is_empty() {
            return Ok(BTreeMap::new());
        }
        let target = countable.join(",");
        let query = [("expand_wildcards", "all"), ("ignore_unavailable", "true")];
        self.call(Method::Post, &format!("/{target}/_refresh"), &query, None)
            .await?
            .ok(&format!("refreshing {pattern}"))?;
        let body = self
            .call(Method::Get, &format!("/{target}/_stats/docs"), &query, None)
            .await?
            .ok(&format!("counting the documents of {pattern}"))?;
        Ok(body["indices"]
            .as_object()
            .map(|indices| {
                indices
                    .iter()
                    .map(|(name, stats)| {
                        let count = stats["primaries"]["docs"]["count"].as_u64().unwrap_or(0);
                        (name.clone(), count)
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Takes a snapshot, recording the document counts of its indices in its metadata.
    /// With `wait`, returns once it is done and describes it.
    pub async fn create_snapshot(
        &self,
        repository: &str,
        new: &NewSnapshot,
    ) -> Result<Option<SnapshotInfo>, EngineError> {
        let name = &new.name;
        let counts = self.doc_counts(&new.indices).await?;
        let body = json!({
            "indices": new.indices,
            "include_global_state": false,
            "partial": new.partial,
            "metadata": {"taken_by": "kbackup", DOC_COUNTS_METADATA: counts},
        });
        let wait_text = new.wait.to_string();
        let reply = self
            .call(
                Method::Put,
                &format!("/_snapshot/{}/{}", encode(repository), encode(name)),
                &[("wait_for_completion", &wait_text)],
                Some(&body),
            )
            .await?
            .ok(&format!(
                "taking snapshot {name} in repository {repository}"
            ))?;
        Ok(reply["snapshot"]
            .as_object()
            .map(|_| SnapshotInfo::from_json(&reply["snapshot"])))
    }

    /// Deletes a snapshot.
    pub async fn delete_snapshot(&self, repository: &str, name: &str) -> Result<(), EngineError> {
        self.call(
            Method::Delete,
            &format!("/_snapshot/{}/{}", encode(repository), encode(name)),
            &[],
            None,
        )
        .await?
        .ok(&format!(
            "deleting snapshot {name} in repository {repository}"
        ))?;
        Ok(())
    }
}

/// Elasticsearch 7.16+ answers 200 for a missing repository and names it under `failures`.
fn repository_failures(body: &Value, repository: &str) -> Result<(), EngineError> {
    match body["failures"].as_object().and_then(|f| f.iter().next()) {
        None => Ok(()),
        Some((name, failure)) => {
            let reason = failure["reason"].as_str().unwrap_or("failed");
            let text = format!("repository {name}: {reason}");
            Err(match failure["type"].as_str() {
                Some("repository_missing_exception") => EngineError::NotFound(format!(
                    "{text} (is elasticsearch.restore.repository '{repository}' right? configuring Elasticsearch for snapshots creates it)"
                )),
                _ => EngineError::Backend(text),
            })
        }
    }
}

/// Whether a snapshot may be restored: SUCCESS yes; PARTIAL only when allowed; anything else
/// never. The error says why and what to do.
pub fn check_restorable(snapshot: &SnapshotInfo, allow_partial: bool) -> Result<(), EngineError> {
    match snapshot.state.as_str() {
        "SUCCESS" => Ok(()),
        "PARTIAL" if allow_partial => Ok(()),
        "PARTIAL" => Err(EngineError::Refused {
            reason: format!(
                "snapshot {} is PARTIAL ({} of {} shards failed)",
                snapshot.name, snapshot.shards_failed, snapshot.shards_total
            ),
            next: NextStep::AllowPartialSnapshot,
        }),
        state => Err(EngineError::Invalid(format!(
            "snapshot {} is {state}: only SUCCESS (or, when allowed, PARTIAL) snapshots are restored",
            snapshot.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        json!({"snapshot": "sts-backup-20261121-0300", "state": "PARTIAL", "indices": ["sts_b", "sts_a"],
               "start_time_in_millis": 1_763_694_000_000_i64, "end_time_in_millis": 1_763_694_004_000_i64,
               "duration_in_millis": 4000, "shards": {"total": 4, "failed": 1, "successful": 3},
               "failures": [{"index": "sts_b", "shard_id": 0, "reason": "primary shard is not allocated"}],
               "metadata": {DOC_COUNTS_METADATA: {"sts_a": 10, "sts_b": 5}}})
    }

    #[test]
    fn reads_state_times_shards_failures_and_counts() {
        let s = SnapshotInfo::from_json(&sample());
        assert_eq!(s.indices, ["sts_a", "sts_b"]);
        assert_eq!((s.shards_total, s.shards_failed), (4, 1));
        assert_eq!(
            s.end.unwrap() - s.start.unwrap(),
            chrono::Duration::seconds(4)
        );
        assert!(s.failures[0].contains("primary shard is not allocated"));
        assert_eq!(s.doc_counts.unwrap()["sts_a"], 10);
    }

    #[test]
    fn only_success_or_allowed_partial_is_restorable() {
        let mut s = SnapshotInfo::from_json(&sample());
        let refused = check_restorable(&s, false).unwrap_err();
        assert!(
            matches!(
                &refused,
                EngineError::Refused { reason, next: NextStep::AllowPartialSnapshot }
                    if reason.contains("1 of 4")
            ),
            "{refused}"
        );
        assert!(check_restorable(&s, true).is_ok());
        s.state = "FAILED".into();
        assert!(check_restorable(&s, true).is_err());
        s.state = "SUCCESS".into();
        assert!(check_restorable(&s, false).is_ok());
    }
}
