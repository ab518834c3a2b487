//! What differs between the Job-based data stores at the command line: their configuration
//! section, where their archives are and how they are named.

use super::Installation;
use crate::cli::StackStateArgs;
use crate::context::Context;
use crate::exit::CliError;
use backup_core::stackstate::{Archive, ArchiveCatalog};
use backup_core::{ObjectStorage, ObjectStorageExt};
use backup_k8s::datastore::{
    DataStoreSpec, GRAPH_SUFFIX, SETTINGS, SETTINGS_SUFFIX, STACKGRAPH, VICTORIA_METRICS,
    VM_BACKUP_MARKER, settings_spec, stackgraph_spec, victoria_metrics_spec,
};

/// One of the Job-based data stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataStore {
    /// StackGraph (`.graph` archives).
    StackGraph,
    /// Settings (`.sty` archives with their StackPacks backup).
    Settings,
    /// VictoriaMetrics (vmbackup directories).
    VictoriaMetrics,
}

/// Restore options that change the Job.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpecOptions {
    /// Settings: leave the StackPacks alone.
    pub skip_stackpacks: bool,
    /// Settings: read the archive from the legacy backup volume.
    pub from_old_pvc: bool,
}

/// The archives of a data store, newest first, and where they are (for messages).
pub struct Catalog {
    pub archives: ArchiveCatalog,
    pub location: String,
}

impl DataStore {
    /// The command and lock name.
    pub fn name(self) -> &'static str {
        match self {
            DataStore::StackGraph => STACKGRAPH,
            DataStore::Settings => SETTINGS,
            DataStore::VictoriaMetrics => VICTORIA_METRICS,
        }
    }

    /// What a restore destroys, for the warning.
    pub fn purge_warning(self) -> &'static str {
        match self {
            DataStore::StackGraph => "PURGES all existing StackGraph (topology) data",
            DataStore::Settings => "REPLACES all settings (and the StackPacks, unless skipped)",
            DataStore::VictoriaMetrics => "PURGES all existing VictoriaMetrics data",
        }
    }

    /// The restore Job's spec from the configuration.
    pub fn spec(
        self,
        installation: &Installation,
        source: &StackStateArgs,
        options: SpecOptions,
    ) -> Result<DataStoreSpec, CliError> {
        let config = &installation.config;
        match self {
            DataStore::StackGraph => {
                stackgraph_spec(config, source.storage.storage_endpoint.as_deref())
            }
            DataStore::Settings => {
                settings_spec(config, options.skip_stackpacks, options.from_old_pvc)
            }
            DataStore::VictoriaMetrics => victoria_metrics_spec(config),
        }
        .map_err(CliError::user)
    }

    /// Every archive (all pages of every listing), newest first.
    pub async fn catalog(
        self,
        installation: &Installation,
        context: &Context,
        source: &StackStateArgs,
    ) -> Result<Catalog, CliError> {
        let config = &installation.config;
        let flag = source.storage.storage_endpoint.clone();
        let single = |bucket: &str, prefix: &str| format!("s3://{bucket}/{prefix}");
        match self {
            DataStore::StackGraph | DataStore::Settings => {
                let (bucket, prefix, endpoint, suffix) = if self == DataStore::StackGraph {
                    let section = config.stackgraph().map_err(CliError::user)?;
                    let endpoint = flag.or_else(|| section.storage_endpoint.clone());
                    (&section.bucket, &section.s3_prefix, endpoint, GRAPH_SUFFIX)
                } else {
                    let section = config.settings().map_err(CliError::user)?;
                    (&section.bucket, &section.s3_prefix, flag, SETTINGS_SUFFIX)
                };
                let store = installation.object_store(context, source, endpoint).await?;
                let storage = store.bucket(bucket, prefix).await?;
                Ok(Catalog {
                    archives: file_catalog(storage.as_ref(), suffix).await?,
                    location: single(bucket, prefix),
                })
            }
            DataStore::VictoriaMetrics => {
                let section = config.victoria_metrics().map_err(CliError::user)?;
                let store = installation.object_store(context, source, flag).await?;
                let mut buckets: Vec<&str> = section
                    .s3_locations
                    .iter()
                    .map(|l| l.bucket.as_str())
                    .collect();
                buckets.dedup();
                let mut catalogs = Vec::new();
                for bucket in &buckets {
                    let objects = store.bucket(bucket, "").await?.list_all("").await?;
                    for location in section.s3_locations.iter().filter(|l| &l.bucket == bucket) {
                        catalogs.push(ArchiveCatalog::from_directories(
                            &objects,
                            bucket,
                            &location.prefix,
                            VM_BACKUP_MARKER,
                        ));
                    }
                }
                Ok(Catalog {
                    archives: ArchiveCatalog::merge(catalogs),
                    location: buckets
                        .iter()
                        .map(|b| single(b, ""))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    }

    /// The archive as the restore Job gets it in BACKUP_FILE: the object name in the bucket
    /// and prefix, or `bucket/directory` for VictoriaMetrics.
    pub fn job_archive(self, archive: &Archive) -> String {
        match self {
            DataStore::VictoriaMetrics => archive.name.clone(),
            _ => archive
                .name
                .rsplit('/')
                .next()
                .unwrap_or(&archive.name)
                .to_owned(),
        }
    }

    /// Adapts the spec to the chosen archive: a StackGraph archive knows whether it is
    /// split, whatever the configuration says now.
    pub fn prepare(self, spec: &mut DataStoreSpec, archive: &Archive) {
        if self == DataStore::StackGraph {
            spec.env.insert(
                "BACKUP_STACKGRAPH_MULTIPART_ARCHIVE".into(),
                archive.is_multipart().to_string(),
            );
        }
    }
}

/// The archives of one bucket and prefix: `.graph` or `.sty` files, alone or in parts.
pub async fn file_catalog(
    storage: &dyn ObjectStorage,
    suffix: &str,
) -> Result<ArchiveCatalog, CliError> {
    let objects = storage.list_all("").await?;
    Ok(ArchiveCatalog::from_objects(&objects, suffix))
}
