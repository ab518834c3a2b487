//! The snapshot engine trait: a data store's own backup mechanism (StackGraph Jobs,
//! Elasticsearch snapshots, cluster manifests), seen uniformly.

use crate::model::{Component, NextStep};
use crate::progress::Progress;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The snapshot or component does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The request is not valid (bad name, refused state).
    #[error("{0}")]
    Invalid(String),
    /// The data store failed or could not be reached.
    #[error("{0}")]
    Backend(String),
    /// Refused as asked; `next` would make it go.
    #[error("{reason}")]
    Refused {
        /// Why.
        reason: String,
        /// What would make it go.
        next: NextStep,
    },
    /// The wait gave up while the work goes on; `next` follows it.
    #[error("{reason}")]
    Unfinished {
        /// What did not finish.
        reason: String,
        /// What follows it.
        next: NextStep,
    },
}

/// A backup as the engine lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineSnapshot {
    /// Its name in the engine (`sts-backup-20261121-0300.graph`, an ES snapshot name).
    pub name: String,
    /// When it was taken.
    pub time: Option<DateTime<Utc>>,
    /// Size in bytes, where known.
    pub size: Option<u64>,
    /// The engine's own state word (`SUCCESS`, `PARTIAL`, ...).
    pub state: String,
}

/// A data store's backup mechanism.
#[async_trait]
pub trait SnapshotEngine: Send + Sync {
    /// The engine's name, as recorded in components.
    fn name(&self) -> &str;
    /// Backups the engine holds, newest first.
    async fn list(&self) -> Result<Vec<EngineSnapshot>, EngineError>;
    /// Details of one backup.
    async fn describe(&self, name: &str) -> Result<serde_json::Value, EngineError>;
    /// Backs up one component.
    async fn backup(
        &self,
        component: &str,
        progress: &dyn Progress,
    ) -> Result<Component, EngineError>;
    /// Restores one component from a backup.
    async fn restore(
        &self,
        snapshot: &str,
        component: &str,
        progress: &dyn Progress,
    ) -> Result<Component, EngineError>;
}
