//! Any data store's restore, driven from its plan to its end by one procedure: start, follow
//! the work, finalize; or stop after the start and leave the finalize to later.

use backup_core::engine::{RestoreEngine, RestoreState};
use backup_core::progress::Progress;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long each step of a restore took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreTimings {
    /// Taking the lock, scaling down, creating what the work needs.
    pub start: Duration,
    /// The work itself (the Job, the recovery).
    pub work: Duration,
    /// Scaling back up and cleaning up.
    pub finalize: Duration,
}

/// A restore that ran to its end.
#[derive(Debug)]
pub struct FinishedRestore<E: RestoreEngine> {
    /// What `start` did.
    pub started: E::Started,
    /// How the work ended.
    pub state: RestoreState,
    /// What the finalize found and did.
    pub outcome: E::Outcome,
    /// How long each step took.
    pub timings: RestoreTimings,
}

/// How a restore stopped short of its end. Whatever the variant, the cluster holds what a
/// later finalize of `operation` needs.
#[derive(Debug, thiserror::Error)]
pub enum RestoreRunError<O, X: std::error::Error> {
    /// Stopped on request (Ctrl-C, a deleted session); the work may go on.
    #[error("interrupted")]
    Interrupted {
        /// What to finalize.
        operation: O,
    },
    /// Following the work failed or timed out; the work may go on.
    #[error("{error}")]
    Unfinished {
        /// What to finalize.
        operation: O,
        /// Why following it stopped.
        error: X,
    },
    /// A step failed.
    #[error(transparent)]
    Failed(X),
}

/// The error of running engine `E`.
pub type RunError<E> =
    RestoreRunError<<E as RestoreEngine>::Operation, <E as RestoreEngine>::Error>;

/// Starts `plan`; stops early when `stop` fires (the start then carries on no further than
/// the step it was in, and a finalize undoes what it did).
pub async fn start_restore<E: RestoreEngine>(
    engine: &E,
    plan: &E::Plan,
    progress: &dyn Progress,
    stop: &CancellationToken,
) -> Result<E::Started, RunError<E>> {
    tokio::select! {
        started = engine.start(plan, chrono::Utc::now(), progress) => {
            started.map_err(RestoreRunError::Failed)
        }
        () = stop.cancelled() => Err(RestoreRunError::Interrupted {
            operation: engine.operation(plan),
        }),
    }
}

/// Runs `plan` to its end: starts it, follows the work for up to `timeout`, then finalizes.
/// `on_started` sees what the start did before the wait begins.
pub async fn run_restore<E: RestoreEngine>(
    engine: &E,
    plan: &E::Plan,
    timeout: Duration,
    progress: &dyn Progress,
    stop: &CancellationToken,
    on_started: impl FnOnce(&E::Started) + Send,
) -> Result<FinishedRestore<E>, RunError<E>> {
    let clock = Instant::now();
    let started = start_restore(engine, plan, progress, stop).await?;
    let start = clock.elapsed();
    on_started(&started);
    let operation = engine.operation(plan);
    let state = tokio::select! {
        waited = engine.wait(&operation, timeout, progress) => match waited {
            Ok(state) => state,
            Err(error) => return Err(RestoreRunError::Unfinished { operation, error }),
        },
        () = stop.cancelled() => return Err(RestoreRunError::Interrupted { operation }),
    };
    let work = clock.elapsed() - start;
    let outcome = engine
        .finalize(&operation)
        .await
        .map_err(RestoreRunError::Failed)?;
    Ok(FinishedRestore {
        started,
        state,
        outcome,
        timings: RestoreTimings {
            start,
            work,
            finalize: clock.elapsed() - start - work,
        },
    })
}

/// Finalizes `operation`; with `wait`, first follows the work until it is over or the wait
/// ends (a wait that fails is an error and finalizes nothing).
pub async fn check_and_finalize<E: RestoreEngine>(
    engine: &E,
    operation: &E::Operation,
    wait: Option<Duration>,
    progress: &dyn Progress,
) -> Result<E::Outcome, E::Error> {
    if let Some(timeout) = wait
        && !engine.observe(operation).await?.is_over()
    {
        engine.wait(operation, timeout, progress).await?;
    }
    engine.finalize(operation).await
}
