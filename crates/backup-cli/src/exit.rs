//! Exit statuses and the error type that carries one.

use backup_core::{ClusterError, StorageError};
use std::process::ExitCode;

/// How kbackup ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything worked.
    Success = 0,
    /// Bad input or an environment problem the user can fix (missing bucket, wrong key).
    UserError = 1,
    /// A bug or an unexpected failure.
    Unexpected = 2,
    /// Some items failed, others succeeded; the report says which.
    Partial = 3,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// An error with the exit status it leads to.
#[derive(Debug)]
pub struct CliError {
    /// The status.
    pub exit: Exit,
    /// What went wrong, with its causes.
    pub error: anyhow::Error,
}

impl CliError {
    /// A problem the user can fix.
    pub fn user(error: impl Into<anyhow::Error>) -> Self {
        Self {
            exit: Exit::UserError,
            error: error.into(),
        }
    }
}

impl From<StorageError> for CliError {
    fn from(error: StorageError) -> Self {
        let exit = match error {
            StorageError::Other { .. } => Exit::Unexpected,
            _ => Exit::UserError,
        };
        Self {
            exit,
            error: error.into(),
        }
    }
}

impl From<ClusterError> for CliError {
    fn from(error: ClusterError) -> Self {
        let exit = match error {
            ClusterError::Api(_) => Exit::Unexpected,
            _ => Exit::UserError,
        };
        Self {
            exit,
            error: error.into(),
        }
    }
}

impl From<crate::config::ConfigError> for CliError {
    fn from(error: crate::config::ConfigError) -> Self {
        Self::user(error)
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        Self::user(error)
    }
}

/// What a command returns.
pub type CliResult = Result<Exit, CliError>;

impl CliError {
    /// Puts a sentence in front of the error (`X is not usable: <cause>`).
    pub fn context_message(self, message: &str) -> Self {
        Self {
            exit: self.exit,
            error: self.error.context(message.to_owned()),
        }
    }
}

impl From<backup_core::EngineError> for CliError {
    fn from(error: backup_core::EngineError) -> Self {
        use crate::next_step::command;
        use backup_core::EngineError;
        use backup_core::model::NextStep;
        match error {
            EngineError::Refused {
                reason,
                next: NextStep::AllowPartialSnapshot,
            } => Self::user(anyhow::anyhow!(
                "{reason}: restore it with {} (the failed shards come back empty)",
                command(&NextStep::AllowPartialSnapshot)
            )),
            EngineError::Refused { reason, next } => {
                Self::user(anyhow::anyhow!("{reason}; {}", command(&next)))
            }
            EngineError::Unfinished { reason, next } => Self::user(anyhow::anyhow!(
                "{reason}; follow it with `{}`",
                command(&next)
            )),
            other => Self::user(other),
        }
    }
}

impl From<backup_elasticsearch::RestoreError> for CliError {
    fn from(error: backup_elasticsearch::RestoreError) -> Self {
        use backup_elasticsearch::RestoreError;
        if let RestoreError::AfterDelete { next, .. } = &error {
            let finalize = crate::next_step::command(next);
            return Self::user(anyhow::anyhow!("{error}: `{finalize}`"));
        }
        match error {
            RestoreError::Workflow(workflow) => workflow.into(),
            RestoreError::Engine(engine) => engine.into(),
            other => Self::user(other),
        }
    }
}

impl From<backup_core::workflow::WorkflowError> for CliError {
    fn from(error: backup_core::workflow::WorkflowError) -> Self {
        use crate::next_step::command;
        use backup_core::model::NextStep;
        match error {
            backup_core::workflow::WorkflowError::Cluster(cluster) => cluster.into(),
            locked @ backup_core::workflow::WorkflowError::Locked { .. } => {
                let advice: Vec<String> = locked
                    .next_steps()
                    .iter()
                    .map(|step| match step {
                        NextStep::ClearRestoreLock { .. } => {
                            format!("if it is stale, clear the lock with `{}`", command(step))
                        }
                        other => format!("finish it with `{}`", command(other)),
                    })
                    .collect();
                Self::user(anyhow::anyhow!("{locked}; {}", advice.join(", or ")))
            }
            other => Self::user(other),
        }
    }
}
