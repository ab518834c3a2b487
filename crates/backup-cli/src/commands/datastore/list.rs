//! `kbackup stackgraph|settings|victoriametrics list`.

use crate::cli::StackStateArgs;
use crate::commands::installation;
use crate::context::Context;
use crate::exit::{CliResult, Exit};
use crate::output::{Tabular, emit};
use backup_core::stackstate::Archive;
use backup_usecases::stackstate::DataStore;
use chrono::SecondsFormat;
use indicatif::HumanBytes;

impl Tabular for Archive {
    fn headers() -> Vec<&'static str> {
        vec!["NAME", "SIZE", "PARTS", "TAKEN", "MODIFIED"]
    }
    fn cells(&self) -> Vec<String> {
        let parts = if self.complete {
            self.parts.len().to_string()
        } else {
            format!("{} (incomplete)", self.parts.len())
        };
        let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_else(|| "-".into())
        };
        vec![
            self.name.clone(),
            HumanBytes(self.size).to_string(),
            parts,
            time(self.time),
            time(self.modified),
        ]
    }
}

/// Lists the archives, newest first.
pub async fn run(context: &Context, kind: DataStore, source: &StackStateArgs) -> CliResult {
    let installation = installation::load(context, &source.config).await?;
    let storage = context.storage_options(&source.storage).await?;
    let endpoint = source.storage.storage_endpoint.clone();
    let catalog = kind.catalog(&installation, storage, endpoint).await?;
    emit(context.output, &catalog.archives.archives)?;
    Ok(Exit::Success)
}
