//! The configuration file, lowest in precedence: file < `KBACKUP_*` variables < flags.
//!
//! Looked up at `--config FILE`, else `$KBACKUP_CONFIG`, else `~/.config/kbackup/config.yaml`
//! (`$XDG_CONFIG_HOME/kbackup/config.yaml`). A missing default file is fine; a missing
//! named file, or a bad one, is an error naming the file, the line and the field.

use crate::output::OutputFormat;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// What the file may hold. Unknown fields are errors, so typos do not pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileConfig {
    /// Default output format.
    pub output: Option<OutputFormat>,
    /// Default namespace.
    pub namespace: Option<String>,
    /// Kubeconfig file.
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    pub context: Option<String>,
    /// Never draw progress bars.
    pub no_progress: Option<bool>,
    /// Object storage defaults.
    #[serde(default)]
    pub storage: StorageFileConfig,
    /// A StackState backup configuration (the schema of the `suse-observability-backup-config`
    /// ConfigMap), used instead of reading it from the cluster.
    pub stackstate: Option<serde_json::Value>,
}

/// The `storage:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageFileConfig {
    /// S3-compatible endpoint.
    pub endpoint: Option<String>,
    /// S3 region.
    pub region: Option<String>,
    /// Virtual-hosted-style requests.
    pub virtual_hosted_style: Option<bool>,
    /// S3 access key id.
    pub access_key_id: Option<String>,
    /// S3 secret access key (prefer `credentialsSecret` or the environment).
    pub secret_access_key: Option<backup_core::Secret>,
    /// Azure account.
    pub azure_account: Option<String>,
    /// Azure account key.
    pub azure_key: Option<backup_core::Secret>,
    /// Azure Blob endpoint.
    pub azure_endpoint: Option<String>,
    /// Kubernetes Secret with credentials (`namespace/name`).
    pub credentials_secret: Option<String>,
    /// Upload part size (`16MiB` or bytes).
    pub part_size: Option<String>,
    /// Parts uploaded at once.
    pub concurrency: Option<usize>,
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named file does not exist or cannot be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("invalid configuration file {path}: {detail}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line, column and field).
        detail: String,
    },
}

/// The default location, when no file is named.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("kbackup/config.yaml"))
}

/// Loads the named file (it must exist), else the default one if present.
pub fn load(named: Option<&Path>) -> Result<FileConfig, ConfigError> {
    let (path, required) = match named {
        Some(path) => (path.to_owned(), true),
        None => match default_path() {
            Some(path) => (path, false),
            None => return Ok(FileConfig::default()),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(FileConfig::default());
        }
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    parse(&text).map_err(|detail| ConfigError::Invalid { path, detail })
}

/// The file's content; an error names the line, the column and the field, never the text
/// or the value there (it may be a secret).
fn parse(text: &str) -> Result<FileConfig, String> {
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    backup_core::yaml::from_yaml(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_full_file() {
        let config = parse("output: json\nnamespace: sts\nstorage:\n  endpoint: http://127.0.0.1:9000\n  concurrency: 8\n  partSize: 16MiB\n").unwrap();
        assert_eq!(config.output, Some(OutputFormat::Json));
        assert_eq!(config.namespace.as_deref(), Some("sts"));
        assert_eq!(config.storage.concurrency, Some(8));
        assert_eq!(config.storage.part_size.as_deref(), Some("16MiB"));
    }

    #[test]
    fn an_unknown_field_is_named_with_its_line() {
        let error = parse("output: json\nstorage:\n  endpont: http://x\n").unwrap_err();
        assert!(error.contains("endpont"), "{error}");
        assert!(error.contains("line 3") || error.contains("3:"), "{error}");
    }

    #[test]
    fn a_bad_value_is_named_by_its_field_not_its_value() {
        let error = parse("output: xml\n").unwrap_err();
        assert!(error.contains("field output"), "{error}");
        assert!(!error.contains("xml"), "{error}");
        let error = parse("storage:\n  secretAccessKey: AKIA-secret\n  endpont: x\n").unwrap_err();
        assert!(error.contains("line 3"), "{error}");
        assert!(!error.contains("AKIA"), "{error}");
        let error = parse("storage:\n  concurrency: 12345678secret\n").unwrap_err();
        assert!(error.contains("field storage.concurrency"), "{error}");
        assert!(!error.contains("12345678"), "{error}");
    }

    #[test]
    fn a_missing_named_file_is_an_error_and_an_empty_file_is_defaults() {
        let missing = Path::new("/nonexistent/kbackup.yaml");
        assert!(matches!(load(Some(missing)), Err(ConfigError::Read { .. })));
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("config.yaml");
        std::fs::write(&empty, "\n").unwrap();
        assert!(load(Some(&empty)).unwrap().output.is_none());
    }
}
