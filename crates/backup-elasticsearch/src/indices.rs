//! The indices of the cluster as `_cat/indices` shows them (`elasticsearch list-indices`).

use crate::client::{EsClient, encode};
use backup_core::EngineError;
use elasticsearch::http::Method;
use serde::Serialize;
use serde_json::Value;

/// The columns asked of `_cat/indices`, sizes in bytes.
const COLUMNS: &str =
    "health,status,index,uuid,pri,rep,docs.count,docs.deleted,store.size,pri.store.size";

/// One index: health, state, shards, documents, sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexInfo {
    /// `green`, `yellow` or `red` (empty for a closed index).
    pub health: String,
    /// `open` or `close`.
    pub status: String,
    /// Its name.
    pub index: String,
    /// Its UUID.
    pub uuid: String,
    /// Primary shards.
    pub primaries: u64,
    /// Replicas of each primary.
    pub replicas: u64,
    /// Documents (`None` for a closed index).
    pub docs_count: Option<u64>,
    /// Deleted documents not yet merged away.
    pub docs_deleted: Option<u64>,
    /// Bytes stored, replicas included.
    pub store_size: Option<u64>,
    /// Bytes stored by the primaries.
    pub primary_store_size: Option<u64>,
}

impl IndexInfo {
    /// One row of `_cat/indices?format=json&bytes=b` (numbers come as strings, missing for
    /// closed indices).
    fn from_cat(row: &Value) -> Self {
        let text = |key: &str| row[key].as_str().unwrap_or_default().to_owned();
        let number = |key: &str| row[key].as_str().and_then(|v| v.parse().ok());
        Self {
            health: text("health"),
            status: text("status"),
            index: text("index"),
            uuid: text("uuid"),
            primaries: number("pri").unwrap_or(0),
            replicas: number("rep").unwrap_or(0),
            docs_count: number("docs.count"),
            docs_deleted: number("docs.deleted"),
            store_size: number("store.size"),
            primary_store_size: number("pri.store.size"),
        }
    }
}

impl EsClient {
    /// The indices matching `pattern` (every index, hidden ones too, without one), by name.
    pub async fn indices_detailed(
        &self,
        pattern: Option<&str>,
    ) -> Result<Vec<IndexInfo>, EngineError> {
        let path = match pattern {
            Some(pattern) => format!("/_cat/indices/{}", encode(pattern)),
            None => "/_cat/indices".to_owned(),
        };
        let query = [
            ("format", "json"),
            ("bytes", "b"),
            ("h", COLUMNS),
            ("expand_wildcards", "all"),
        ];
        let reply = self.call(Method::Get, &path, &query, None).await?;
        // A pattern no index matches.
        if reply.status == 404 {
            return Ok(Vec::new());
        }
        let rows = reply.ok("listing the indices")?;
        let mut indices: Vec<IndexInfo> = rows
            .as_array()
            .into_iter()
            .flatten()
            .map(IndexInfo::from_cat)
            .collect();
        indices.sort_by(|a, b| a.index.cmp(&b.index));
        Ok(indices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_open_and_closed_index_rows() {
        let open = json!({"health": "yellow", "status": "open", "index": "logs", "uuid": "u1",
            "pri": "1", "rep": "1", "docs.count": "42", "docs.deleted": "0",
            "store.size": "2048", "pri.store.size": "1024"});
        let info = IndexInfo::from_cat(&open);
        assert_eq!(
            (info.primaries, info.docs_count, info.primary_store_size),
            (1, Some(42), Some(1024))
        );
        let closed = json!({"health": null, "status": "close", "index": "old", "uuid": "u2",
            "pri": "1", "rep": "0", "docs.count": null});
        let info = IndexInfo::from_cat(&closed);
        assert_eq!(
            (info.health.as_str(), info.status.as_str(), info.docs_count),
            ("", "close", None)
        );
    }
}
