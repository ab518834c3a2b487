//! `kbackup elasticsearch configure [--dry-run] [--no-slm]`.

use super::EsSession;
use crate::cli::EsArgs;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use backup_elasticsearch::{repository_request, slm_request};
use serde::Serialize;
use serde_json::Value;

/// One configured object.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigureRow {
    object: String,
    request: String,
    /// `Created`, `Updated`, `Unchanged`, `DryRun` or `Failed: ...`.
    result: String,
    /// The body sent (credentials redacted).
    body: Value,
}

impl Tabular for ConfigureRow {
    fn headers() -> Vec<&'static str> {
        vec!["OBJECT", "REQUEST", "RESULT"]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.object.clone(),
            self.request.clone(),
            self.result.clone(),
        ]
    }
}

/// Applies (or shows) the repository and the SLM policy.
pub async fn run(context: &Context, source: &EsArgs, dry_run: bool, no_slm: bool) -> CliResult {
    let session = EsSession::open(context, source).await?;
    let config = &session.installation.config;
    let mut requests = vec![repository_request(
        config
            .elasticsearch_snapshot_repository()
            .map_err(CliError::user)?,
    )];
    if !no_slm {
        requests.push(slm_request(
            config.elasticsearch_slm().map_err(CliError::user)?,
        ));
    }
    let mut rows = Vec::new();
    let mut failure = None;
    for (n, request) in requests.iter().enumerate() {
        let result = if dry_run {
            "DryRun".to_owned()
        } else if failure.is_some() {
            "Skipped".to_owned()
        } else {
            let applied = if n == 0 {
                session.client().apply_repository(request).await
            } else {
                session.client().apply_slm(request).await
            };
            match applied {
                Ok(change) => format!("{change:?}"),
                Err(error) => {
                    let text = format!("Failed: {error}");
                    failure = Some((n, error));
                    text
                }
            }
        };
        rows.push(ConfigureRow {
            object: request.object.clone(),
            request: format!("PUT {}", request.path),
            result,
            body: request.redacted(),
        });
    }
    emit(context.output, &rows)?;
    match failure {
        None => Ok(Exit::Success),
        // The repository is in place, the policy is not.
        Some((n, error)) if n > 0 => Err(CliError {
            exit: Exit::Partial,
            error: anyhow::Error::new(error).context(
                "the repository is configured but the SLM policy is not (--no-slm skips it)",
            ),
        }),
        Some((_, error)) => Err(error.into()),
    }
}
