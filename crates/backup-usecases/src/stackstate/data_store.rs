//! What differs between the Job-based data stores: their configuration section, where
//! their archives are and how they are named, and how a restore of one is prepared.

use super::{Installation, StackStateError};
use backup_core::cluster::Cluster;
use backup_core::stackstate::{
    Archive, ArchiveCatalog, ArchiveError, ConfigError, LatestBy, StackStateConfig,
};
use backup_core::{ObjectStorage, ObjectStorageExt};
use backup_k8s::datastore::{
    DataStoreSpec, GRAPH_SUFFIX, GRAPH_V2_SUFFIX, JobRequest, Operation, SETTINGS, SETTINGS_SUFFIX,
    STACKGRAPH, STACKGRAPH_V2, VICTORIA_METRICS, VM_BACKUP_MARKER, settings_spec, stackgraph_spec,
    stackgraph_v2_prefix, stackgraph_v2_spec, victoria_metrics_spec,
};
use backup_storage::StorageOptions;

/// One of the Job-based data stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataStore {
    /// StackGraph (`.graph` archives).
    StackGraph,
    /// StackGraph's incremental v2 backups (`.graph.v2`, below `<s3Prefix>v2/`), restored
    /// live, then backfilled.
    StackGraphV2,
    /// Settings (`.sty` archives with their StackPacks backup).
    Settings,
    /// VictoriaMetrics (vmbackup directories).
    VictoriaMetrics,
}

/// Restore options that change the Job.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpecOptions {
    /// Settings and StackGraph v2: leave the StackPacks alone.
    pub skip_stackpacks: bool,
    /// Settings: read the archive from the legacy backup volume.
    pub from_old_pvc: bool,
}

/// The archives of a data store, newest first, and where they are (for messages).
pub struct Catalog {
    /// The archives.
    pub archives: ArchiveCatalog,
    /// `s3://bucket/prefix`, or several of them.
    pub location: String,
}

/// A restore Job ready to plan: its spec, adapted to the archive, and its request.
pub struct PreparedRestore {
    /// The Job's spec.
    pub spec: DataStoreSpec,
    /// The archive and keys it works with.
    pub request: JobRequest,
}

impl DataStore {
    /// The command and lock name.
    pub fn name(self) -> &'static str {
        match self {
            DataStore::StackGraph => STACKGRAPH,
            DataStore::StackGraphV2 => STACKGRAPH_V2,
            DataStore::Settings => SETTINGS,
            DataStore::VictoriaMetrics => VICTORIA_METRICS,
        }
    }

    /// What a restore destroys, for the warning.
    pub fn purge_warning(self) -> &'static str {
        match self {
            DataStore::StackGraph => "PURGES all existing StackGraph (topology) data",
            DataStore::StackGraphV2 => {
                "PURGES all existing StackGraph (topology) data and replaces the StackPacks \
                 (unless skipped); the historic data is loaded after the live data, while the \
                 system runs"
            }
            DataStore::Settings => "REPLACES all settings (and the StackPacks, unless skipped)",
            DataStore::VictoriaMetrics => "PURGES all existing VictoriaMetrics data",
        }
    }

    /// The Job's spec from the configuration; `storage_endpoint` overrides StackGraph's.
    pub fn spec(
        self,
        config: &StackStateConfig,
        storage_endpoint: Option<&str>,
        options: SpecOptions,
    ) -> Result<DataStoreSpec, StackStateError> {
        Ok(match self {
            DataStore::StackGraph => stackgraph_spec(config, storage_endpoint)?,
            DataStore::StackGraphV2 => stackgraph_v2_spec(
                config,
                storage_endpoint,
                options.skip_stackpacks,
                Operation::Restore,
            )?,
            DataStore::Settings => {
                settings_spec(config, options.skip_stackpacks, options.from_old_pvc)?
            }
            DataStore::VictoriaMetrics => victoria_metrics_spec(config)?,
        })
    }

    /// Every archive (all pages of every listing), newest first. `storage_endpoint`
    /// overrides the configuration's.
    pub async fn catalog<C: Cluster>(
        self,
        installation: &Installation<C>,
        options: StorageOptions,
        storage_endpoint: Option<String>,
    ) -> Result<Catalog, StackStateError> {
        let config = &installation.config;
        let single = |bucket: &str, prefix: &str| format!("s3://{bucket}/{prefix}");
        match self {
            DataStore::StackGraph => {
                let section = config.stackgraph()?;
                let endpoint = storage_endpoint.or_else(|| section.storage_endpoint.clone());
                let store = installation.archive_store(options, endpoint).await?;
                let (bucket, prefix) = (&section.bucket, &section.s3_prefix);
                let storage = store.bucket(bucket, prefix).await?;
                let archives = file_catalog(storage.as_ref(), GRAPH_SUFFIX).await?;
                Ok(Catalog {
                    archives: match section.lists_split_archives() {
                        true => archives,
                        false => archives.without_split_archives(),
                    },
                    location: single(bucket, prefix),
                })
            }
            DataStore::StackGraphV2 => {
                let section = config.stackgraph()?;
                let endpoint = storage_endpoint.or_else(|| section.storage_endpoint.clone());
                let store = installation.archive_store(options, endpoint).await?;
                let (bucket, prefix) = (&section.bucket, stackgraph_v2_prefix(&section.s3_prefix));
                let storage = store.bucket(bucket, &prefix).await?;
                // A backup is named by one object at the top of the prefix; its data lies
                // below, in as many objects as it has increments: not listed.
                let top = storage.list_with_delimiter("").await?;
                let mut archives = ArchiveCatalog::from_objects(&top.objects, GRAPH_V2_SUFFIX)
                    .without_split_archives();
                archives
                    .archives
                    .retain(|a| a.name.starts_with("sts-backup-"));
                Ok(Catalog {
                    archives,
                    location: single(bucket, &prefix),
                })
            }
            DataStore::Settings => {
                let section = config.settings()?;
                if !config.global_backup_enabled() && section.local_bucket.is_none() {
                    return Err(ConfigError::Missing {
                        field: "settings.localBucket".into(),
                        hint: " (with storage.globalBackupEnabled false the settings backups are only there)".into(),
                    }
                    .into());
                }
                let store = installation
                    .archive_store(options, storage_endpoint)
                    .await?;
                let (bucket, prefix) = (&section.bucket, &section.s3_prefix);
                let mut catalogs = Vec::new();
                let mut locations = Vec::new();
                // With `storage.globalBackupEnabled: false` nothing goes to the bucket.
                if config.global_backup_enabled() {
                    let storage = store.bucket(bucket, prefix).await?;
                    catalogs.push(file_catalog(storage.as_ref(), SETTINGS_SUFFIX).await?);
                    locations.push(single(bucket, prefix));
                }
                // The local bucket (the chart's `settings.localBucket`) holds the backups
                // kept in the installation: listed beside the bucket (its top level), as
                // sts-backup does; the restore Job looks there first.
                if let Some(local) = &section.local_bucket {
                    let copies = store.bucket(local, "").await?;
                    let mut kept = file_catalog(copies.as_ref(), SETTINGS_SUFFIX).await?;
                    kept.archives.retain(|a| !a.name.contains('/'));
                    catalogs.push(kept);
                    locations.push(single(local, ""));
                }
                Ok(Catalog {
                    archives: ArchiveCatalog::merge(catalogs),
                    location: locations.join(" and "),
                })
            }
            DataStore::VictoriaMetrics => {
                let section = config.victoria_metrics()?;
                let store = installation
                    .archive_store(options, storage_endpoint)
                    .await?;
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

/// Which archive a restore takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveChoice<'a> {
    /// The archive of that name.
    Named(&'a str),
    /// The latest complete archive, by the name's timestamp or by LastModified.
    Latest(LatestBy),
    /// The first of these names the data store holds (a Snapshot object records what each
    /// data store of its session wrote, in one list).
    AnyOf(&'a [String]),
}

impl<C: Cluster> Installation<C> {
    /// Prepares the restore of `data_store` from the chosen archive. The spec is checked
    /// before any listing; an archive on the legacy volume (`from_old_pvc`) is taken by
    /// name, unlisted (the Job fails if it is absent).
    pub async fn prepare_restore(
        &self,
        data_store: DataStore,
        choice: ArchiveChoice<'_>,
        spec_options: SpecOptions,
        storage: StorageOptions,
        storage_endpoint: Option<String>,
    ) -> Result<PreparedRestore, StackStateError> {
        let mut spec = data_store.spec(&self.config, storage_endpoint.as_deref(), spec_options)?;
        let archive = match (choice, spec_options.from_old_pvc) {
            (ArchiveChoice::Named(name), true) => name.to_owned(),
            _ => {
                let catalog = data_store.catalog(self, storage, storage_endpoint).await?;
                let chosen = match choice {
                    ArchiveChoice::Named(name) => catalog.archives.find(name, &catalog.location),
                    ArchiveChoice::AnyOf(names) => names
                        .iter()
                        .map(|name| catalog.archives.find(name, &catalog.location))
                        .find(|found| !matches!(found, Err(ArchiveError::NotFound { .. })))
                        .unwrap_or_else(|| {
                            catalog.archives.find(&names.join(","), &catalog.location)
                        }),
                    ArchiveChoice::Latest(by) => {
                        catalog
                            .archives
                            .latest(by, data_store.name(), &catalog.location)
                    }
                }?;
                data_store.prepare(&mut spec, chosen);
                data_store.job_archive(chosen)
            }
        };
        Ok(PreparedRestore {
            request: self.job_request(archive)?,
            spec,
        })
    }
}

/// The archives of one bucket and prefix: `.graph` or `.sty` files, alone or in parts.
pub async fn file_catalog(
    storage: &dyn ObjectStorage,
    suffix: &str,
) -> Result<ArchiveCatalog, StackStateError> {
    let objects = storage.list_all("").await?;
    Ok(ArchiveCatalog::from_objects(&objects, suffix))
}
