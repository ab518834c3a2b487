//! A StackState / SUSE Observability installation and its data stores: the configuration
//! read from the cluster, the archives of the Job-based data stores (StackGraph and its v2
//! backups, settings, VictoriaMetrics) and the restores that bring them back, and the connection to its
//! Elasticsearch.

mod archive_store;
mod backup;
mod cronjob_backup;
mod data_store;
mod elasticsearch;
mod error;
mod expiry;
mod installation;
mod stackgraph_v2;

pub use archive_store::ArchiveStore;
pub use backup::{StackGraphBackup, backup_failure};
pub use cronjob_backup::{CronJobBackup, CronJobBackupOutcome};
pub use data_store::{
    ArchiveChoice, Catalog, DataStore, PreparedRestore, SpecOptions, file_catalog,
};
pub use elasticsearch::{EsConnection, EsCredentials, EsSnapshotRequest, TakenSnapshot};
pub use error::StackStateError;
pub use expiry::ExpiryPlan;
pub use installation::{ConfigSource, Installation};
pub use stackgraph_v2::{BackfillStep, PreparedStep};
