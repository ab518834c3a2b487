//! The manifests component of a snapshot, read back record by record.

use super::MANIFESTS;
use backup_core::resources::{ManifestError, ManifestReader, ManifestRecord};
use backup_repository::{Repository, RepositoryError, SnapshotFile};
use futures::StreamExt;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};
use tokio_util::compat::TokioAsyncWriteCompatExt;

/// The longest manifest line read. A Kubernetes object is at most a few MiB (the API
/// server's and etcd's request limits), so a longer line is damage, never data: it is
/// refused before it is held in memory.
pub const MAX_RECORD_LINE: usize = 16 << 20;

/// Why the manifests of a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestsError {
    /// The snapshot has no manifests component.
    #[error("snapshot {snapshot} has no {MANIFESTS} component: it is not a cluster snapshot")]
    NotClusterSnapshot {
        /// The snapshot's short id.
        snapshot: String,
    },
    /// A record or the whole fails its check.
    #[error("snapshot {snapshot} cannot be restored: {cause}")]
    Damaged {
        /// The snapshot's short id.
        snapshot: String,
        /// What is wrong.
        cause: ManifestError,
    },
    /// The repository could not give the component.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    /// The component could not be passed on.
    #[error("reading the manifests: {0}")]
    Io(#[from] std::io::Error),
}

/// Streams the manifests component of a snapshot out of the repository, line by line, each
/// record verified against its checksum and the whole against the trailer; `each` sees every
/// record (and stops the reading with an error). A damaged snapshot is refused naming what
/// is wrong. Returns the number of records.
pub async fn read_manifests<E: From<ManifestsError>>(
    repository: &Repository,
    file: &SnapshotFile,
    mut each: impl FnMut(ManifestRecord) -> Result<(), E>,
) -> Result<u64, E> {
    let snapshot = file.snapshot.id.short().to_owned();
    let content = file
        .streams
        .iter()
        .find(|s| s.name == MANIFESTS)
        .ok_or_else(|| ManifestsError::NotClusterSnapshot {
            snapshot: snapshot.clone(),
        })?;
    let index = repository
        .load_index()
        .await
        .map_err(ManifestsError::from)?;
    let (writer, reader) = tokio::io::duplex(1 << 20);
    let producer = async {
        repository
            .restore_stream(&index, content, writer.compat_write())
            .await
            .map_err(|e| E::from(e.into()))
    };
    let consumer = async {
        let codec = LinesCodec::new_with_max_length(MAX_RECORD_LINE);
        let mut lines = FramedRead::new(reader, codec);
        let mut manifest = ManifestReader::default();
        let damaged = |cause| ManifestsError::Damaged {
            snapshot: snapshot.clone(),
            cause,
        };
        let mut number = 0;
        while let Some(line) = lines.next().await {
            number += 1;
            let line = match line {
                Ok(line) => line,
                Err(LinesCodecError::MaxLineLengthExceeded) => {
                    Err(damaged(ManifestError::Malformed {
                        line: number,
                        detail: format!(
                            "longer than {} MiB, which no Kubernetes object is",
                            MAX_RECORD_LINE >> 20
                        ),
                    }))?
                }
                Err(LinesCodecError::Io(error)) => Err(ManifestsError::from(error))?,
            };
            if let Some(record) = manifest.line(&line).map_err(damaged)? {
                each(record)?;
            }
        }
        Ok(manifest.finish().map_err(damaged)?)
    };
    let (_, count) = tokio::try_join!(producer, consumer)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::back_up_stream;

    #[tokio::test]
    async fn an_overlong_line_is_refused_as_damage_before_it_is_held() {
        let repository = crate::test_repository::in_memory().await;
        let line = vec![b'a'; MAX_RECORD_LINE + 1];
        back_up_stream(&repository, MANIFESTS, line.as_slice(), Default::default())
            .await
            .unwrap();
        let file = repository.snapshots().await.unwrap().remove(0);
        let error = read_manifests(&repository, &file, |_| Ok::<_, ManifestsError>(()))
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(error, ManifestsError::Damaged { .. }) && text.contains("line 1"),
            "{text}"
        );
    }
}
