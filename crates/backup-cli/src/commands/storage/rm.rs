//! `kbackup storage rm URL KEY... | -r`: objects deleted, after a question `-y` answers.

use super::{open, parse_location};
use crate::cli::StorageArgs;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use backup_usecases::storage_removal::{delete_all, delete_keys};
use serde::Serialize;

/// What was deleted.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Removal {
    location: String,
    deleted: usize,
}

impl Tabular for Removal {
    fn headers() -> Vec<&'static str> {
        vec!["LOCATION", "DELETED"]
    }
    fn cells(&self) -> Vec<String> {
        vec![self.location.clone(), self.deleted.to_string()]
    }
}

/// Deletes `keys` below `url`, or everything below it when `recursive`.
pub async fn run(
    context: &Context,
    url: &str,
    keys: &[String],
    recursive: bool,
    args: &StorageArgs,
) -> CliResult {
    let location = parse_location(url)?;
    // A directory that is not there holds nothing (a repository never written to).
    if let Some(directory) = location.path.as_deref().filter(|d| !d.exists()) {
        context.info(&format!(
            "{url}: nothing to delete, {} does not exist",
            directory.display()
        ));
        let nothing = Removal {
            location: url.to_owned(),
            deleted: 0,
        };
        emit(context.output, &[nothing])?;
        return Ok(Exit::Success);
    }
    let (storage, _) = open(context, &location, args).await?;
    let question = if recursive {
        format!("Delete EVERY object below {}?", storage.location())
    } else {
        format!(
            "Delete {} object(s) below {}?",
            keys.len(),
            storage.location()
        )
    };
    context.confirm(&question)?;
    let deleted = if recursive {
        delete_all(storage.as_ref()).await
    } else {
        delete_keys(storage.as_ref(), keys).await
    }
    .map_err(CliError::from)?;
    emit(
        context.output,
        &[Removal {
            location: storage.location(),
            deleted,
        }],
    )?;
    Ok(Exit::Success)
}
