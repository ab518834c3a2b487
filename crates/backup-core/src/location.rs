//! Where a repository or a storage location lives, parsed from a URL.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// The storage backends kbackup speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StorageScheme {
    /// A local directory (`file:///path` or a plain path).
    File,
    /// Amazon S3 or any S3-compatible server such as MinIO (`s3://bucket/prefix`).
    S3,
    /// Azure Blob Storage or Azurite (`az://container/prefix`).
    Azure,
    /// Google Cloud Storage (`gs://bucket/prefix`).
    Gcs,
    /// Process memory, for tests (`memory://prefix`).
    Memory,
}

/// A parsed storage location: scheme, bucket (container) and key prefix, or a local path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RepositoryLocation {
    /// Backend.
    pub scheme: StorageScheme,
    /// Bucket or container (empty for `file` and `memory`).
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/`.
    pub prefix: String,
    /// The directory, for `file`.
    pub path: Option<PathBuf>,
}

/// A location that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid storage URL '{url}': {reason}")]
pub struct LocationError {
    /// What was given.
    pub url: String,
    /// What is wrong with it.
    pub reason: String,
}

impl RepositoryLocation {
    /// Parses `file:///dir`, a plain path, `s3://bucket/prefix`, `az://container/prefix`
    /// (also `azure://`), `gs://bucket/prefix` or `memory://prefix`.
    pub fn parse(text: &str) -> Result<Self, LocationError> {
        let err = |reason: &str| LocationError {
            url: text.to_owned(),
            reason: reason.to_owned(),
        };
        let Some((scheme, rest)) = text.split_once("://") else {
            if text.is_empty() {
                return Err(err("empty"));
            }
            return Ok(Self::file(PathBuf::from(text)));
        };
        let scheme = match scheme {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(err("a file URL needs an absolute path (file:///dir)"));
                }
                return Ok(Self::file(PathBuf::from(rest)));
            }
            "s3" => StorageScheme::S3,
            "az" | "azure" => StorageScheme::Azure,
            "gs" => StorageScheme::Gcs,
            "memory" => {
                return Ok(Self {
                    scheme: StorageScheme::Memory,
                    bucket: String::new(),
                    prefix: trim(rest),
                    path: None,
                });
            }
            other => {
                return Err(err(&format!(
                    "unknown scheme '{other}' (use file, s3, az, gs or memory)"
                )));
            }
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(err("the bucket or container name is missing"));
        }
        if bucket.contains(['?', '#', '@']) {
            return Err(err(
                "credentials and query strings do not belong in the URL; use flags or environment variables",
            ));
        }
        Ok(Self {
            scheme,
            bucket: bucket.to_owned(),
            prefix: trim(prefix),
            path: None,
        })
    }

    fn file(path: PathBuf) -> Self {
        Self {
            scheme: StorageScheme::File,
            bucket: String::new(),
            prefix: String::new(),
            path: Some(path),
        }
    }

    /// The same location one level deeper.
    pub fn join(&self, sub: &str) -> Self {
        let mut out = self.clone();
        match &mut out.path {
            Some(path) => path.push(sub),
            None => out.prefix = trim(&format!("{}/{}", self.prefix, sub)),
        }
        out
    }
}

fn trim(prefix: &str) -> String {
    prefix.trim_matches('/').to_owned()
}

impl fmt::Display for RepositoryLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            StorageScheme::File => {
                return write!(
                    f,
                    "file://{}",
                    self.path
                        .as_deref()
                        .unwrap_or_else(|| "".as_ref())
                        .display()
                );
            }
            StorageScheme::Memory => return write!(f, "memory://{}", self.prefix),
            StorageScheme::S3 => "s3",
            StorageScheme::Azure => "az",
            StorageScheme::Gcs => "gs",
        };
        write!(f, "{scheme}://{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// Refuses an endpoint URL (`--storage-endpoint`, `--es-url`, the configuration file) that
/// carries credentials (`user:password@host`): they would end up in messages and process
/// listings. The error names `what` and never repeats the URL.
pub fn check_endpoint(what: &str, url: &str) -> Result<(), String> {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    if authority.contains('@') {
        return Err(format!(
            "{what} holds credentials (user:password@): pass them through their own flags, \
             environment variables or a Secret, never in the URL"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        let s3 = RepositoryLocation::parse("s3://sts-stackgraph-backup/a/b/").unwrap();
        assert_eq!(
            (s3.scheme, s3.bucket.as_str(), s3.prefix.as_str()),
            (StorageScheme::S3, "sts-stackgraph-backup", "a/b")
        );
        assert_eq!(
            RepositoryLocation::parse("az://c").unwrap().scheme,
            StorageScheme::Azure
        );
        assert_eq!(
            RepositoryLocation::parse("azure://c/p").unwrap().prefix,
            "p"
        );
        assert_eq!(
            RepositoryLocation::parse("gs://g").unwrap().scheme,
            StorageScheme::Gcs
        );
        assert_eq!(RepositoryLocation::parse("memory://x").unwrap().prefix, "x");
        let file = RepositoryLocation::parse("file:///tmp/repo").unwrap();
        assert_eq!(file.path.as_deref(), Some("/tmp/repo".as_ref()));
        assert_eq!(
            RepositoryLocation::parse("./repo").unwrap().scheme,
            StorageScheme::File
        );
    }

    #[test]
    fn rejects_bad_urls_with_a_reason() {
        for (url, reason) in [
            ("ftp://x", "unknown scheme"),
            ("s3://", "bucket"),
            ("file://relative", "absolute"),
            ("s3://key:secret@bucket", "credentials"),
            ("", "empty"),
        ] {
            let e = RepositoryLocation::parse(url).unwrap_err();
            assert!(e.reason.contains(reason), "{url}: {e}");
        }
    }

    #[test]
    fn displays_and_joins() {
        let loc = RepositoryLocation::parse("s3://b/p").unwrap();
        assert_eq!(loc.join("snapshots").to_string(), "s3://b/p/snapshots");
        assert_eq!(
            RepositoryLocation::parse("s3://b")
                .unwrap()
                .join("x")
                .prefix,
            "x"
        );
        assert_eq!(
            RepositoryLocation::parse("file:///r")
                .unwrap()
                .join("x")
                .to_string(),
            "file:///r/x"
        );
    }

    #[test]
    fn endpoints_with_credentials_are_refused_without_repeating_them() {
        for url in [
            "http://admin:hunter2@127.0.0.1:9200",
            "https://user@minio.local",
            "admin:hunter2@es:9200/path",
        ] {
            let error = check_endpoint("--es-url", url).unwrap_err();
            assert!(
                error.contains("--es-url") && !error.contains("hunter2"),
                "{error}"
            );
        }
        for url in [
            "http://127.0.0.1:9000",
            "https://es.example/path?x=a@b",
            "http://[::1]:9200",
        ] {
            assert!(check_endpoint("--storage-endpoint", url).is_ok(), "{url}");
        }
    }
}
