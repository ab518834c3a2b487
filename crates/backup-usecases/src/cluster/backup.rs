//! A cluster's resources backed up as the manifests component of a new snapshot.

use super::{ENGINE, MANIFESTS};
use crate::snapshot::new_snapshot;
use crate::snapshot::{SnapshotMarks, commit_stream};
use crate::volumes::backup::{MovedVolumes, VOLUMES_LABEL, VolumeOptions, move_volumes};
use crate::volumes::discovery::VolumeSelection;
use backup_core::cluster::{JobControl, PodExec, ResourceStore, WorkloadControl};
use backup_core::model::{Phase, Report};
use backup_core::resources::{
    Cleaning, ManifestRecord, ManifestWriter, ResourceFilter, cluster_dependencies,
};
use backup_core::{ClusterError, Component, Progress, SnapshotId, Totals};
use backup_k8s::cluster_resources::{CollectOptions, ResourceCollector};
use backup_repository::{BackupStats, Repository, RepositoryError, SnapshotFile, StreamContent};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio_util::compat::TokioAsyncReadCompatExt;

/// What to back up and how.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// The selection.
    pub filter: ResourceFilter,
    /// What is cleaned from each object.
    pub cleaning: Cleaning,
    /// Also write each object's YAML under this directory.
    pub output_dir: Option<PathBuf>,
    /// Types listed at the same time.
    pub concurrency: usize,
    /// The snapshot's tags and labels.
    pub marks: SnapshotMarks,
}

/// What a cluster backup did.
#[derive(Debug, Clone)]
pub struct ClusterBackup {
    /// The new snapshot.
    pub id: SnapshotId,
    /// Succeeded, or PartiallyFailed when types or objects could not be read.
    pub phase: Phase,
    /// Objects per kind.
    pub kinds: BTreeMap<String, u64>,
    /// Resource types listed.
    pub types: usize,
    /// Bytes of manifests.
    pub size: u64,
    /// Bytes the repository did not have yet.
    pub added_bytes: u64,
    /// Packs an interrupted backup had uploaded, reused.
    pub adopted_packs: usize,
    /// How long it took.
    pub duration: Duration,
    /// Every type or object that could not be read.
    pub report: Report,
    /// Namespaces the filter names (without globs) from which nothing was backed up.
    pub empty_namespaces: Vec<String>,
}

impl ClusterBackup {
    /// Objects backed up.
    pub fn objects(&self) -> u64 {
        self.kinds.values().sum()
    }
}

/// Why a cluster backup stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum ClusterBackupError {
    /// The cluster refused or failed (discovery, a filter naming no type).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The repository failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    /// The volumes could not be backed up.
    #[error(transparent)]
    Volumes(#[from] crate::volumes::backup::VolumeError),
    /// The output directory could not be written.
    #[error("the output directory: {0}")]
    Output(#[from] std::io::Error),
    /// A name read from the cluster is not a plain file name.
    #[error("{kind} {name:?}: {part:?} is not a file name; not written to the output directory")]
    UnsafeName {
        /// The object's kind.
        kind: String,
        /// Its name.
        name: String,
        /// The offending part of its path.
        part: String,
    },
}

/// `DIR/<namespace or _cluster>/<resource[.group]>/<name>.yaml`; names read from the
/// cluster that are not plain file names (`..`, `/`, empty) are refused.
fn yaml_path(dir: &Path, record: &ManifestRecord) -> Result<PathBuf, ClusterBackupError> {
    let kind = if record.group.is_empty() {
        record.resource.clone()
    } else {
        format!("{}.{}", record.resource, record.group)
    };
    let file = format!("{}.yaml", record.name);
    let names = [
        record.namespace.as_deref().unwrap_or("_cluster"),
        &kind,
        &file,
    ];
    if let Some(bad) = names
        .iter()
        .find(|n| matches!(**n, "" | "." | ".." | ".yaml") || n.contains(['/', '\0']))
    {
        return Err(ClusterBackupError::UnsafeName {
            kind: record.kind.clone(),
            name: record.name.clone(),
            part: (*bad).to_owned(),
        });
    }
    Ok(names
        .iter()
        .fold(dir.to_path_buf(), |path, name| path.join(name)))
}

/// Writes one object's YAML: directories 0700, files 0600 (Secrets among them).
fn write_yaml(dir: &Path, record: &ManifestRecord) -> Result<(), ClusterBackupError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = yaml_path(dir, record)?;
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    let text = serde_saphyr::to_string(&record.object).map_err(std::io::Error::other)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    // A file that was there keeps its mode through open: make it private too.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// Lists the selected objects and streams them into the repository as the `manifests`
/// component of a new snapshot; reports what was taken and what could not be read (the
/// snapshot is then PartiallyFailed). `progress` counts resource types.
pub async fn backup<C: ResourceStore + ?Sized>(
    repository: &Repository,
    cluster: &C,
    options: BackupOptions,
    progress: &dyn Progress,
) -> Result<ClusterBackup, ClusterBackupError> {
    let started = Instant::now();
    let stored = store_manifests(repository, cluster, &options, progress).await?;
    let totals = stored.totals();
    let (id, phase) = commit_stream(
        repository,
        options.marks.clone(),
        stored.own_labels(),
        stored.component.clone(),
        stored.content.clone(),
        totals,
    )
    .await?;
    Ok(stored.into_backup(id, phase, &options, started))
}

/// Lists the selected objects and streams them into the repository as the `manifests`
/// component, then backs up the volumes of the workloads of every namespace taken (through
/// mover pods: the volume use case), and commits one snapshot of both. `progress` counts
/// resource types, then volumes.
pub async fn backup_with_volumes<
    C: ResourceStore + JobControl + PodExec + WorkloadControl + ?Sized,
>(
    repository: &Repository,
    cluster: &C,
    options: BackupOptions,
    volumes: &VolumeOptions,
    progress: &dyn Progress,
) -> Result<(ClusterBackup, MovedVolumes), ClusterBackupError> {
    let started = Instant::now();
    let stored = store_manifests(repository, cluster, &options, progress).await?;
    let mut moved = MovedVolumes::default();
    for namespace in &stored.namespaces {
        let selection = VolumeSelection {
            namespace: namespace.clone(),
            selector: options.filter.selector.clone(),
            ..VolumeSelection::default()
        };
        moved.extend(move_volumes(cluster, repository, &selection, volumes, progress).await?);
    }
    let mut totals = stored.totals();
    totals.items += moved.trees.iter().map(|t| t.files + t.dirs).sum::<u64>();
    totals.bytes += moved.trees.iter().map(|t| t.bytes).sum::<u64>();
    totals.added_bytes += moved.added_bytes;
    let mut labels = stored.own_labels();
    labels.insert(VOLUMES_LABEL.to_owned(), stored.namespaces.join(","));
    let components = std::iter::once(stored.component.clone())
        .chain(moved.components.iter().cloned())
        .collect();
    let snapshot = new_snapshot(options.marks.clone(), labels, components, totals);
    let phase = snapshot.phase();
    let id = repository
        .write_snapshot(SnapshotFile {
            snapshot,
            streams: vec![stored.content.clone()],
            trees: moved.trees.clone(),
        })
        .await?;
    let mut backup = stored.into_backup(id, phase, &options, started);
    backup.added_bytes += moved.added_bytes;
    Ok((backup, moved))
}

/// The manifests stored, before a snapshot holds them.
struct StoredManifests {
    component: Component,
    content: StreamContent,
    stats: BackupStats,
    kinds: BTreeMap<String, u64>,
    report: Report,
    /// Namespaces whose objects were taken.
    namespaces: Vec<String>,
    /// Namespaces taken, with those needed by other objects.
    seen: BTreeSet<String>,
    types: usize,
}

impl StoredManifests {
    fn objects(&self) -> u64 {
        self.kinds.values().sum()
    }

    fn totals(&self) -> Totals {
        Totals {
            items: self.objects(),
            bytes: self.content.size,
            added_bytes: self.stats.added_bytes,
        }
    }

    fn own_labels(&self) -> BTreeMap<String, String> {
        [("kbackup.io/objects".to_string(), self.objects().to_string())].into()
    }

    fn into_backup(
        self,
        id: SnapshotId,
        phase: Phase,
        options: &BackupOptions,
        started: Instant,
    ) -> ClusterBackup {
        let empty_namespaces = options
            .filter
            .named_namespaces()
            .into_iter()
            .filter(|n| !self.seen.contains(*n))
            .map(str::to_owned)
            .collect();
        ClusterBackup {
            id,
            phase,
            kinds: self.kinds,
            types: self.types,
            size: self.content.size,
            added_bytes: self.stats.added_bytes,
            adopted_packs: self.stats.adopted_packs,
            duration: started.elapsed(),
            report: self.report,
            empty_namespaces,
        }
    }
}

/// Lists the selected objects and stores them as the `manifests` stream (no snapshot).
async fn store_manifests<C: ResourceStore + ?Sized>(
    repository: &Repository,
    cluster: &C,
    options: &BackupOptions,
    progress: &dyn Progress,
) -> Result<StoredManifests, ClusterBackupError> {
    let started = Instant::now();
    let collector = ResourceCollector::new(
        cluster,
        CollectOptions {
            filter: options.filter.clone(),
            cleaning: options.cleaning,
            concurrency: options.concurrency,
            page_size: 500,
        },
    );
    let plan = collector.plan().await?;
    tracing::info!(
        "discovery: {} types selected of {} served ({:.3}s)",
        plan.types.len(),
        plan.served.len(),
        started.elapsed().as_secs_f64()
    );
    let (mut writer, reader) = tokio::io::duplex(1 << 20);
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut report = Report::default();
    for api in &plan.unavailable {
        report.warn(
            format!("API {}", api.group_version),
            format!(
                "not backed up: its APIService is not available ({}), so its objects cannot be read",
                api.reason
            ),
        );
    }
    progress.start(
        "backing up cluster resources",
        Some(plan.types.len() as u64),
    );
    let producer = async {
        let mut manifest = ManifestWriter::default();
        writer.write_all(manifest.header().as_bytes()).await?;
        let mut needs = BTreeSet::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut taken: BTreeSet<String> = BTreeSet::new();
        let emit = |record: &ManifestRecord,
                    manifest: &mut ManifestWriter,
                    kinds: &mut BTreeMap<String, u64>|
         -> Result<String, ClusterBackupError> {
            if let Some(dir) = &options.output_dir {
                write_yaml(dir, record)?;
            }
            *kinds.entry(record.kind.clone()).or_default() += 1;
            Ok(manifest.record(record))
        };
        let mut batches = std::pin::pin!(collector.collect(&plan));
        while let Some(batch) = batches.next().await {
            if let Some(reason) = &batch.refused {
                report.warn(
                    format!(
                        "{} ({})",
                        batch.resource.plural,
                        batch.resource.api_version()
                    ),
                    format!("not backed up: {reason}"),
                );
            }
            if batch.complete {
                progress.advance(1);
            }
            for record in &batch.records {
                if record.kind == "Namespace" && record.group.is_empty() {
                    seen.insert(record.name.clone());
                }
                if let Some(namespace) = &record.namespace {
                    taken.insert(namespace.clone());
                }
                needs.extend(cluster_dependencies(record));
                let line = emit(record, &mut manifest, &mut kinds)?;
                writer.write_all(line.as_bytes()).await?;
            }
        }
        tracing::info!("listed ({:.3}s)", started.elapsed().as_secs_f64());
        for record in collector
            .needed_cluster_objects(&plan, &needs, &mut report)
            .await?
        {
            let line = emit(&record, &mut manifest, &mut kinds)?;
            writer.write_all(line.as_bytes()).await?;
        }
        writer.write_all(manifest.trailer().as_bytes()).await?;
        writer.shutdown().await?;
        seen.extend(
            needs
                .into_iter()
                .filter(|k| k.kind == "Namespace" && k.group.is_empty())
                .map(|k| k.name),
        );
        Ok::<_, ClusterBackupError>((seen, taken.into_iter().collect::<Vec<_>>()))
    };
    let consumer = async {
        repository
            .backup_stream(MANIFESTS, reader.compat())
            .await
            .map_err(ClusterBackupError::from)
    };
    let ((seen, namespaces), (content, stats)) = tokio::try_join!(producer, consumer)?;
    tracing::info!("stored ({:.3}s)", started.elapsed().as_secs_f64());
    progress.finish();
    let mut component =
        Component::new(MANIFESTS, ENGINE).succeeded(content.size, started.elapsed());
    if report.warnings() > 0 {
        component.phase = Phase::PartiallyFailed;
        component.error = Some(format!(
            "{} resource type(s) or object(s) could not be read",
            report.warnings()
        ));
    }
    Ok(StoredManifests {
        component,
        content,
        stats,
        kinds,
        report,
        namespaces,
        seen,
        types: plan.types.len(),
    })
}
