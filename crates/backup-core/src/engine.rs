//! The restore engine trait: a data store's restore (a StackGraph, settings or
//! VictoriaMetrics Job, an Elasticsearch snapshot restore, a cluster's manifests), in the
//! steps every front-end drives the same way.

use crate::model::NextStep;
use crate::progress::Progress;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Duration;

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

/// Where a started restore is, as [`RestoreEngine::observe`] sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "camelCase")]
pub enum RestoreState {
    /// The work goes on; `message` says how far it is.
    Running {
        /// Progress in the engine's words (`3 of 5 shards done`).
        message: String,
    },
    /// The work ended well.
    Succeeded,
    /// The work ended badly.
    Failed {
        /// Why, in the data store's words.
        reason: String,
    },
    /// No trace of the work: never started, or already finalized.
    NotFound,
}

impl RestoreState {
    /// Whether the work has ended (or never began), so that finalizing completes the restore.
    pub fn is_over(&self) -> bool {
        !matches!(self, Self::Running { .. })
    }
}

/// A data store's restore, in the steps an operator reconciles: plan (change nothing), start
/// (take the lock, prepare, set the work going), observe (at once, change nothing), finalize
/// (once the work is over: release the lock, scale back up, clean up).
///
/// State lives in the cluster, never only in the process: [`RestoreEngine::operation`] names
/// the work before it starts, so a restore interrupted at any step, even inside `start`, is
/// observed and finalized from its plan by another process. `finalize` is idempotent; while
/// the work runs it changes nothing.
#[async_trait]
pub trait RestoreEngine: Send + Sync {
    /// What to restore (an archive, a snapshot and its indices, a snapshot's manifests).
    type Request: Send + Sync;
    /// What `start` will do; shown to the user, then given to `start` as it was shown.
    type Plan: Send + Sync;
    /// What `start` did.
    type Started: Send;
    /// The name of the work (a Job, a snapshot), kept where a later process finds it.
    type Operation: Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync;
    /// What `finalize` found and did.
    type Outcome: Send;
    /// Why a step failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Computes the plan, changing nothing.
    async fn plan(&self, request: &Self::Request) -> Result<Self::Plan, Self::Error>;
    /// The operation the plan starts, known before it starts.
    fn operation(&self, plan: &Self::Plan) -> Self::Operation;
    /// Runs the plan up to the point where the work goes on without this process (or, for
    /// work done by this process, to its end).
    async fn start(
        &self,
        plan: &Self::Plan,
        now: DateTime<Utc>,
        progress: &dyn Progress,
    ) -> Result<Self::Started, Self::Error>;
    /// Where the work is, at once, changing nothing.
    async fn observe(&self, operation: &Self::Operation) -> Result<RestoreState, Self::Error>;
    /// Follows the work until it is over or `timeout` passes, reporting on `progress`;
    /// changes nothing.
    async fn wait(
        &self,
        operation: &Self::Operation,
        timeout: Duration,
        progress: &dyn Progress,
    ) -> Result<RestoreState, Self::Error>;
    /// Completes the restore once the work is over; idempotent, from any process.
    async fn finalize(&self, operation: &Self::Operation) -> Result<Self::Outcome, Self::Error>;
}
