//! `kbackup elasticsearch list|describe|snapshot|delete`.

use super::EsSession;
use crate::cli::EsArgs;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use anyhow::anyhow;
use backup_elasticsearch::SnapshotInfo;
use backup_usecases::stackstate::EsSnapshotRequest;
use chrono::SecondsFormat;

impl Tabular for SnapshotInfo {
    fn headers() -> Vec<&'static str> {
        vec![
            "NAME",
            "STATE",
            "STARTED",
            "DURATION",
            "INDICES",
            "SHARDS OK/FAILED",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.state.clone(),
            self.start
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_else(|| "-".into()),
            format!("{:.1}s", self.duration_ms as f64 / 1000.0),
            self.indices.len().to_string(),
            format!("{}/{}", self.shards_successful, self.shards_failed),
        ]
    }
}

/// Lists the snapshots, newest first.
pub async fn list(context: &Context, source: &EsArgs) -> CliResult {
    let session = EsSession::open(context, source).await?;
    let snapshots = session
        .client()
        .snapshots(&session.installation.elasticsearch_repository()?)
        .await?;
    emit(context.output, &snapshots)?;
    Ok(Exit::Success)
}

/// Describes one snapshot (the table adds its indices and failures on stderr).
pub async fn describe(context: &Context, source: &EsArgs, name: &str) -> CliResult {
    let session = EsSession::open(context, source).await?;
    let snapshot = session
        .client()
        .snapshot(&session.installation.elasticsearch_repository()?, name)
        .await?;
    emit(context.output, std::slice::from_ref(&snapshot))?;
    if context.output == crate::output::OutputFormat::Table {
        context.info(&format!("indices: {}", snapshot.indices.join(", ")));
        for failure in &snapshot.failures {
            context.info(&format!("failure: {failure}"));
        }
    }
    Ok(Exit::Success)
}

/// Takes a snapshot now.
pub async fn take(
    context: &Context,
    source: &EsArgs,
    name: Option<String>,
    indices: Option<String>,
    wait: bool,
    partial: bool,
) -> CliResult {
    let session = EsSession::open(context, source).await?;
    let request = EsSnapshotRequest {
        name,
        indices,
        wait,
        partial,
    };
    let progress = context.progress();
    let taken = session
        .installation
        .take_es_snapshot(&session.connection, request, &progress)
        .await?;
    let name = taken.name;
    match taken.info {
        Some(snapshot) => {
            emit(context.output, std::slice::from_ref(&snapshot))?;
            match snapshot.state.as_str() {
                "SUCCESS" => Ok(Exit::Success),
                state => Err(CliError {
                    exit: crate::exit::Exit::Partial,
                    error: anyhow!(
                        "snapshot {name} ended {state}: {}",
                        snapshot.failures.join("; ")
                    ),
                }),
            }
        }
        None => {
            crate::output::write_stdout(format!("{name}\n").as_bytes())?;
            context.info(&format!(
                "snapshot {name} started; `kbackup elasticsearch describe --snapshot {name}` shows its state"
            ));
            Ok(Exit::Success)
        }
    }
}

/// Deletes a snapshot after confirmation.
pub async fn delete(context: &Context, source: &EsArgs, name: &str) -> CliResult {
    let session = EsSession::open(context, source).await?;
    let repository = session.installation.elasticsearch_repository()?;
    // Fails clearly on a missing snapshot before asking anything.
    session.client().snapshot(&repository, name).await?;
    context.confirm(&format!(
        "Delete snapshot {name} from repository {repository}?"
    ))?;
    session.client().delete_snapshot(&repository, name).await?;
    context.info(&format!(
        "deleted snapshot {name} from repository {repository}"
    ));
    Ok(Exit::Success)
}
