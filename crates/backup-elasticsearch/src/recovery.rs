//! Shard recoveries, as `_cat/recovery` reports them: how far a snapshot restore is.

use serde_json::Value;

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
    pub(crate) fn of_snapshot(&self, repository: &str, snapshot: &str) -> bool {
        self.kind == "snapshot" && self.repository == repository && self.snapshot == snapshot
    }
}

impl Recovery {
    pub(crate) fn from_cat(body: &Value) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
