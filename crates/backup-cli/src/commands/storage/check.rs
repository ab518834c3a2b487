//! `kbackup storage check URL`: a write/read/list/conditional-create/delete probe with a
//! verdict a person can act on.

use super::{open_creating, parse_location};
use crate::cli::StorageArgs;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use backup_usecases::storage_probe::{ProbeStep, probe_storage};

impl Tabular for ProbeStep {
    fn headers() -> Vec<&'static str> {
        vec!["STEP", "RESULT", "TIME", "DETAIL"]
    }
    fn cells(&self) -> Vec<String> {
        let time = self
            .millis
            .map(|ms| format!("{ms}ms"))
            .unwrap_or_else(|| "-".into());
        vec![
            self.step.into(),
            self.result.into(),
            time,
            self.detail.clone(),
        ]
    }
}

/// Probes the location (a missing `file://` directory made first when `create`); exits 1
/// naming the first step that failed and its cause.
pub async fn run(context: &Context, url: &str, create: bool, args: &StorageArgs) -> CliResult {
    let location = parse_location(url)?;
    let (storage, _) = open_creating(context, &location, args, create).await?;
    let probe = probe_storage(storage.as_ref()).await;
    emit(context.output, &probe.steps)?;
    match probe.failure {
        None => {
            context.info(&format!(
                "{}: usable (write, read, list, conditional create, delete all work)",
                storage.location()
            ));
            Ok(Exit::Success)
        }
        Some(error) => {
            Err(CliError::from(error)
                .context_message(&format!("{} is not usable", storage.location())))
        }
    }
}
