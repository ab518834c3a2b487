//! `kbackup storage ls URL [-r]`.

use super::{open, parse_location};
use crate::cli::StorageArgs;
use crate::context::Context;
use crate::exit::{CliResult, Exit};
use crate::output::{Tabular, emit};
use backup_core::ObjectStorageExt;
use indicatif::HumanBytes;
use serde::Serialize;

/// One listed entry: an object, or a "directory" (common prefix).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
    directory: bool,
}

impl Tabular for Entry {
    fn headers() -> Vec<&'static str> {
        vec!["KEY", "SIZE", "MODIFIED"]
    }
    fn cells(&self) -> Vec<String> {
        let size = self
            .size
            .map(|s| HumanBytes(s).to_string())
            .unwrap_or_else(|| "-".into());
        vec![
            self.key.clone(),
            size,
            self.last_modified.clone().unwrap_or_else(|| "-".into()),
        ]
    }
}

/// Lists one level under the URL, or everything below it with `recursive`.
pub async fn run(context: &Context, url: &str, recursive: bool, args: &StorageArgs) -> CliResult {
    let location = parse_location(url)?;
    let (storage, _) = open(context, &location, args).await?;
    let object = |m: backup_core::ObjectMeta| Entry {
        key: m.key,
        size: Some(m.size),
        last_modified: m
            .last_modified
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        directory: false,
    };
    let entries: Vec<Entry> = if recursive {
        storage
            .list_all("")
            .await?
            .into_iter()
            .map(object)
            .collect()
    } else {
        let listing = storage.list_with_delimiter("").await?;
        let dirs = listing.prefixes.into_iter().map(|p| Entry {
            key: format!("{p}/"),
            size: None,
            last_modified: None,
            directory: true,
        });
        dirs.chain(listing.objects.into_iter().map(object))
            .collect()
    };
    emit(context.output, &entries)?;
    Ok(Exit::Success)
}
