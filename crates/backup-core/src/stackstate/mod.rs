//! StackState / SUSE Observability backup configuration, as `sts-backup` reads it: YAML in
//! the `config` key of the ConfigMap `suse-observability-backup-config`, with the Secret of
//! the same name (credentials) merged over it.

mod archive;
mod config;
mod elasticsearch;
mod settings;
mod victoria_metrics;

pub use archive::{Archive, ArchiveCatalog, ArchiveError, LatestBy};
pub use config::{
    ConfigError, DEFAULT_CONFIG_KEY, DEFAULT_CONFIG_NAME, JobSettings, ObjectStoreSection,
    PvcSettings, ServiceRef, StackGraphRestore, StackGraphSection, StackStateConfig,
};
pub use elasticsearch::{
    ElasticsearchRestore, ElasticsearchSection, RepositoryType, SlmPolicy, SnapshotRepository,
};
pub use settings::{SettingsRestore, SettingsSection, StackPacksSection};
pub use victoria_metrics::{HaMode, S3Location, VictoriaMetricsRestore, VictoriaMetricsSection};
