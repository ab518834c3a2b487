//! `kbackup elasticsearch list-indices`.

use super::EsSession;
use crate::cli::EsArgs;
use crate::context::Context;
use crate::exit::{CliResult, Exit};
use crate::output::{Tabular, emit};
use backup_elasticsearch::IndexInfo;
use indicatif::HumanBytes;

impl Tabular for IndexInfo {
    fn headers() -> Vec<&'static str> {
        vec![
            "HEALTH",
            "STATUS",
            "INDEX",
            "UUID",
            "PRI",
            "REP",
            "DOCS",
            "DELETED",
            "STORE",
            "PRI STORE",
        ]
    }
    fn cells(&self) -> Vec<String> {
        let count = |n: Option<u64>| n.map_or_else(|| "-".into(), |n| n.to_string());
        let bytes = |n: Option<u64>| n.map_or_else(|| "-".into(), |n| HumanBytes(n).to_string());
        vec![
            self.health.clone(),
            self.status.clone(),
            self.index.clone(),
            self.uuid.clone(),
            self.primaries.to_string(),
            self.replicas.to_string(),
            count(self.docs_count),
            count(self.docs_deleted),
            bytes(self.store_size),
            bytes(self.primary_store_size),
        ]
    }
}

/// Lists the indices, by name.
pub async fn list(context: &Context, source: &EsArgs, pattern: Option<&str>) -> CliResult {
    let session = EsSession::open(context, source).await?;
    let indices = session.client().indices_detailed(pattern).await?;
    emit(context.output, &indices)?;
    Ok(Exit::Success)
}
