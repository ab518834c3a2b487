//! Why a StackState command could not go on.

use backup_core::stackstate::{ArchiveError, ConfigError};
use backup_core::workflow::WorkflowError;
use backup_core::{ClusterError, EngineError, StorageError};

/// Why the installation, its archives or its Elasticsearch could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackStateError {
    /// The configuration is missing a field or does not parse.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The backup configuration's ConfigMap is not in the namespace.
    #[error("ConfigMap {namespace}/{name} not found: is {namespace} the installation's namespace?")]
    ConfigMapMissing {
        /// The namespace looked in.
        namespace: String,
        /// The ConfigMap's name.
        name: String,
    },
    /// The cluster refused or could not be reached.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The archives' object store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Elasticsearch refused or could not be reached.
    #[error(transparent)]
    Elasticsearch(#[from] EngineError),
    /// No Elasticsearch URL given and no `elasticsearch.service` configured.
    #[error(
        "configuration field elasticsearch.service (name and port) is required without an Elasticsearch URL"
    )]
    NoElasticsearchService,
    /// No indices to snapshot were asked for, and the configuration names none.
    #[error("no indices to snapshot: none asked for, and elasticsearch.slm.indices is not set")]
    NoIndices,
    /// The snapshot repository holds no snapshot.
    #[error("no snapshots in repository {0}")]
    NoSnapshots(String),
    /// A retention too long to subtract from the current time.
    #[error("retention {0:?} is too long")]
    RetentionTooLong(std::time::Duration),
    /// The chosen archive is not there, or there is none.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A restore holds the lock, or the Job could not be run.
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
}
