//! `kbackup backup cluster`, `kbackup restore cluster`, `kbackup snapshot describe`: the
//! manifests of a cluster's resources as a component of a kbackup snapshot.

mod backup;
mod describe;
mod diff;
mod restore;

pub use backup::{BackupOptions, backup};
pub use describe::describe;
pub use diff::diff;
pub use restore::restore;

use crate::cli::FilterArgs;
use crate::exit::CliError;
use anyhow::anyhow;
use backup_core::resources::{ManifestReader, ManifestRecord, ResourceFilter};
use backup_repository::{Repository, SnapshotFile};
use tokio::io::AsyncBufReadExt;
use tokio_util::compat::TokioAsyncWriteCompatExt;

/// The component holding the manifests.
pub const MANIFESTS: &str = "manifests";
/// The engine recorded in the component.
pub const ENGINE: &str = "cluster-resources";

impl From<FilterArgs> for ResourceFilter {
    fn from(args: FilterArgs) -> Self {
        Self {
            include_namespaces: args.include_namespaces,
            exclude_namespaces: args.exclude_namespaces,
            include_resources: args.include_resources,
            exclude_resources: args.exclude_resources,
            selector: args.selector,
            include_cluster_resources: args.include_cluster_resources,
        }
    }
}

/// Streams the manifests component of a snapshot out of the repository, line by line, each
/// record verified against its checksum and the whole against the trailer; `each` sees every
/// record (and stops the reading with an error). A damaged snapshot is refused naming what is wrong.
pub async fn read_manifests(
    repository: &Repository,
    file: &SnapshotFile,
    mut each: impl FnMut(ManifestRecord) -> Result<(), CliError>,
) -> Result<u64, CliError> {
    let content = file
        .streams
        .iter()
        .find(|s| s.name == MANIFESTS)
        .ok_or_else(|| {
            CliError::user(anyhow!(
                "snapshot {} has no {MANIFESTS} component: it is not a cluster snapshot",
                file.snapshot.id.short()
            ))
        })?;
    let index = repository.load_index().await?;
    let (writer, reader) = tokio::io::duplex(1 << 20);
    let producer = async {
        let result = repository
            .restore_stream(&index, content, writer.compat_write())
            .await;
        result.map_err(CliError::from)
    };
    let consumer = async {
        let mut lines = tokio::io::BufReader::new(reader).lines();
        let mut manifest = ManifestReader::default();
        let damaged = |e: &dyn std::fmt::Display| {
            CliError::user(anyhow!(
                "snapshot {} cannot be restored: {e}",
                file.snapshot.id.short()
            ))
        };
        while let Some(line) = lines.next_line().await? {
            if let Some(record) = manifest.line(&line).map_err(|e| damaged(&e))? {
                each(record)?;
            }
        }
        manifest.finish().map_err(|e| damaged(&e))
    };
    let (_, count) = tokio::try_join!(producer, consumer)?;
    Ok(count)
}
