//! `kbackup storage cp SRC DST`: a local file or stdin to an object, or an object to a file
//! or stdout, streamed (memory stays near part size x concurrency, whatever the size).

use super::open;
use crate::cli::StorageArgs;
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use anyhow::anyhow;
use backup_core::{
    ByteStream, ObjectStorage, Progress, RepositoryLocation, StorageError, StorageScheme,
};
use backup_storage::StorageOptions;
use futures::{StreamExt, TryStreamExt};
use indicatif::HumanBytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::io::ReaderStream;

/// Read size from local files and stdin.
const READ_CHUNK: usize = 1024 * 1024;

/// One side of a copy.
#[derive(Debug, PartialEq)]
enum Endpoint {
    /// stdin or stdout.
    Stdio,
    /// A local file.
    Local(PathBuf),
    /// An object: the bucket (or container) and the key in it.
    Object {
        location: RepositoryLocation,
        key: String,
    },
}

impl Endpoint {
    fn parse(text: &str) -> Result<Self, CliError> {
        if text == "-" {
            return Ok(Self::Stdio);
        }
        if !text.contains("://") {
            return Ok(Self::Local(PathBuf::from(text)));
        }
        let mut location = RepositoryLocation::parse(text).map_err(CliError::user)?;
        if matches!(location.scheme, StorageScheme::File | StorageScheme::Memory) {
            return match location.path {
                Some(path) => Ok(Self::Local(path)),
                None => Err(CliError::user(anyhow!(
                    "'{text}' cannot be copied to or from: memory:// lives only inside one process"
                ))),
            };
        }
        let key = std::mem::take(&mut location.prefix);
        if text.ends_with('/') || key.is_empty() {
            // A "directory": the source's name is appended later.
            return Ok(Self::Object {
                location,
                key: if key.is_empty() {
                    key
                } else {
                    format!("{key}/")
                },
            });
        }
        Ok(Self::Object { location, key })
    }
}

/// Copies between a local side and an object side.
pub async fn run(context: &Context, src: &str, dst: &str, args: &StorageArgs) -> CliResult {
    match (Endpoint::parse(src)?, Endpoint::parse(dst)?) {
        (Endpoint::Object { .. }, Endpoint::Object { .. })
        | (Endpoint::Stdio | Endpoint::Local(_), Endpoint::Stdio | Endpoint::Local(_)) => {
            Err(CliError::user(anyhow!(
                "one side of `storage cp` must be a local path or `-`, the other an object URL"
            )))
        }
        (source, Endpoint::Object { location, key }) => {
            let key = complete_key(&key, &source)?;
            let (storage, options) = open(context, &location, args).await?;
            upload(context, storage, options, source, &key).await
        }
        (Endpoint::Object { location, key }, target) => {
            if key.is_empty() || key.ends_with('/') {
                return Err(CliError::user(anyhow!(
                    "'{src}' names a bucket or prefix, not an object"
                )));
            }
            let (storage, _) = open(context, &location, args).await?;
            download(context, storage, &key, target).await
        }
    }
}

/// `dir/` + the source's file name; stdin needs a full key.
fn complete_key(key: &str, source: &Endpoint) -> Result<String, CliError> {
    if !key.is_empty() && !key.ends_with('/') {
        return Ok(key.to_owned());
    }
    match source {
        Endpoint::Local(path) => {
            let name = path
                .file_name()
                .ok_or_else(|| CliError::user(anyhow!("'{}' has no file name", path.display())))?;
            Ok(format!("{key}{}", name.to_string_lossy()))
        }
        _ => Err(CliError::user(anyhow!(
            "copying from stdin needs a full object key, not a bucket or prefix"
        ))),
    }
}

async fn upload(
    context: &Context,
    storage: Arc<dyn ObjectStorage>,
    options: StorageOptions,
    source: Endpoint,
    key: &str,
) -> CliResult {
    let (reader, total): (Box<dyn AsyncRead + Send + Unpin>, Option<u64>) = match &source {
        Endpoint::Local(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| CliError::user(anyhow!("cannot read {}: {e}", path.display())))?;
            let size = file.metadata().await?.len();
            (Box::new(file), Some(size))
        }
        _ => (Box::new(tokio::io::stdin()), None),
    };
    let progress = Arc::new(context.progress());
    progress.start(&format!("upload {key}"), total);
    let counter = Arc::clone(&progress);
    let body: ByteStream = ReaderStream::with_capacity(reader, READ_CHUNK)
        .map_err(StorageError::from)
        .inspect_ok(move |chunk| counter.advance(chunk.len() as u64))
        .boxed();
    let result = storage.put_stream(key, body, options.put).await;
    progress.finish();
    let meta = result?;
    context.info(&format!(
        "uploaded {} to {}/{key}",
        HumanBytes(meta.size),
        storage.location()
    ));
    Ok(Exit::Success)
}

async fn download(
    context: &Context,
    storage: Arc<dyn ObjectStorage>,
    key: &str,
    target: Endpoint,
) -> CliResult {
    let size = storage.head(key).await?.size;
    let mut stream = storage.get(key, None).await?;
    let progress = context.progress();
    progress.start(&format!("download {key}"), Some(size));
    let written = match target {
        Endpoint::Local(path) => {
            let path = if path.is_dir() {
                path.join(key.rsplit('/').next().unwrap_or(key))
            } else {
                path
            };
            // Write beside the target and rename at the end: a failed download never
            // leaves a truncated file, nor destroys an existing one.
            let partial = partial_path(&path);
            let file = tokio::fs::File::create(&partial)
                .await
                .map_err(|e| CliError::user(anyhow!("cannot write {}: {e}", partial.display())))?;
            let result = write_all(&mut stream, file, &progress).await;
            if result.is_ok() {
                tokio::fs::rename(&partial, &path).await?;
            } else {
                let _ = tokio::fs::remove_file(&partial).await;
            }
            result
        }
        _ => write_all(&mut stream, tokio::io::stdout(), &progress).await,
    };
    progress.finish();
    let written = written?;
    if written != size {
        return Err(CliError::from(StorageError::Invalid(format!(
            "{key}: read {written} bytes, the object has {size}"
        ))));
    }
    context.info(&format!(
        "downloaded {} from {}/{key}",
        HumanBytes(written),
        storage.location()
    ));
    Ok(Exit::Success)
}

/// Copies a stream into a writer, returning the bytes written. A closed stdout ends quietly.
async fn write_all(
    stream: &mut ByteStream,
    mut out: impl AsyncWrite + Unpin,
    progress: &dyn Progress,
) -> Result<u64, CliError> {
    let mut written = 0u64;
    while let Some(chunk) = stream.try_next().await? {
        match out.write_all(&chunk).await {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(written),
            other => other?,
        }
        written += chunk.len() as u64;
        progress.advance(chunk.len() as u64);
    }
    out.flush().await?;
    Ok(written)
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".kbackup-partial");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_sides() {
        assert_eq!(Endpoint::parse("-").unwrap(), Endpoint::Stdio);
        assert_eq!(
            Endpoint::parse("a/b.bin").unwrap(),
            Endpoint::Local("a/b.bin".into())
        );
        assert_eq!(
            Endpoint::parse("file:///tmp/x").unwrap(),
            Endpoint::Local("/tmp/x".into())
        );
        match Endpoint::parse("s3://bucket/dir/file.graph").unwrap() {
            Endpoint::Object { location, key } => {
                assert_eq!(
                    (
                        location.bucket.as_str(),
                        location.prefix.as_str(),
                        key.as_str()
                    ),
                    ("bucket", "", "dir/file.graph")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(Endpoint::parse("memory://x").is_err());
    }

    #[test]
    fn a_directory_key_takes_the_source_name() {
        let source = Endpoint::Local("/data/sts-backup-20261121-0300.graph".into());
        let Endpoint::Object { key, .. } = Endpoint::parse("s3://b/backups/").unwrap() else {
            panic!()
        };
        assert_eq!(
            complete_key(&key, &source).unwrap(),
            "backups/sts-backup-20261121-0300.graph"
        );
        let Endpoint::Object { key, .. } = Endpoint::parse("s3://b").unwrap() else {
            panic!()
        };
        assert_eq!(
            complete_key(&key, &source).unwrap(),
            "sts-backup-20261121-0300.graph"
        );
        assert!(complete_key("", &Endpoint::Stdio).is_err());
    }
}
