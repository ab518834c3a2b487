//! `kbackup backup cluster`.

use crate::cli::{RepoArgs, SnapshotMarks};
use crate::commands::repo::{new_snapshot, note_adopted, open};
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use anyhow::anyhow;
use backup_core::model::{Phase, Report};
use backup_core::resources::{
    Cleaning, ManifestRecord, ManifestWriter, ResourceFilter, cluster_dependencies,
};
use backup_core::{Component, Progress, Totals};
use backup_k8s::KubeCluster;
use backup_k8s::cluster_resources::{CollectOptions, ResourceCollector};
use backup_repository::SnapshotFile;
use backup_usecases::cluster::{ENGINE, MANIFESTS};
use futures::StreamExt;
use indicatif::HumanBytes;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tokio_util::compat::TokioAsyncReadCompatExt;

/// What `backup cluster` was asked.
pub struct BackupOptions {
    pub filter: ResourceFilter,
    pub cleaning: Cleaning,
    pub output_dir: Option<PathBuf>,
    pub concurrency: usize,
    pub marks: SnapshotMarks,
}

/// Objects of one kind in the backup.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KindRow {
    kind: String,
    objects: u64,
}

impl Tabular for KindRow {
    fn headers() -> Vec<&'static str> {
        vec!["KIND", "OBJECTS"]
    }
    fn cells(&self) -> Vec<String> {
        vec![self.kind.clone(), self.objects.to_string()]
    }
}

/// `DIR/<namespace or _cluster>/<resource[.group]>/<name>.yaml`; names read from the
/// cluster that are not plain file names (`..`, `/`, empty) are refused.
fn yaml_path(dir: &Path, record: &ManifestRecord) -> Result<PathBuf, CliError> {
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
        return Err(CliError::user(anyhow!(
            "{} {:?}: {bad:?} is not a file name; not written to the output directory",
            record.kind,
            record.name
        )));
    }
    Ok(names
        .iter()
        .fold(dir.to_path_buf(), |path, name| path.join(name)))
}

/// Writes one object's YAML: directories 0700, files 0600 (Secrets among them).
fn write_yaml(dir: &Path, record: &ManifestRecord) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = yaml_path(dir, record)?;
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    let text = serde_saphyr::to_string(&record.object).map_err(|e| CliError::user(anyhow!(e)))?;
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

/// Lists the selected objects, streams them into the repository as the `manifests`
/// component of a new snapshot, and reports what was taken and what was refused.
pub async fn backup(context: &Context, repo: &RepoArgs, options: BackupOptions) -> CliResult {
    let repository = open(context, repo).await?;
    let cluster = KubeCluster::connect(&context.kube).await?;
    let started = Instant::now();
    // Namespaces named without globs: each should yield something.
    let named: Vec<String> = options
        .filter
        .named_namespaces()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let collector = ResourceCollector::new(
        &cluster,
        CollectOptions {
            filter: options.filter,
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
    let progress = context.progress();
    progress.start(
        "backing up cluster resources",
        Some(plan.types.len() as u64),
    );
    let producer = async {
        let mut manifest = ManifestWriter::default();
        writer.write_all(manifest.header().as_bytes()).await?;
        let mut needs = BTreeSet::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let emit = |record: &ManifestRecord,
                    manifest: &mut ManifestWriter,
                    kinds: &mut BTreeMap<String, u64>|
         -> Result<String, CliError> {
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
        Ok::<_, CliError>(seen)
    };
    let consumer = async {
        repository
            .backup_stream(MANIFESTS, reader.compat())
            .await
            .map_err(CliError::from)
    };
    let (seen, (content, stats)) = tokio::try_join!(producer, consumer)?;
    tracing::info!("stored ({:.3}s)", started.elapsed().as_secs_f64());
    progress.finish();
    let objects: u64 = kinds.values().sum();
    let mut component =
        Component::new(MANIFESTS, ENGINE).succeeded(content.size, started.elapsed());
    if report.warnings() > 0 {
        component.phase = Phase::PartiallyFailed;
        component.error = Some(format!(
            "{} resource type(s) or object(s) could not be read",
            report.warnings()
        ));
    }
    let totals = Totals {
        items: objects,
        bytes: content.size,
        added_bytes: stats.added_bytes,
    };
    let snapshot = new_snapshot(
        options.marks,
        [("kbackup.io/objects".to_string(), objects.to_string())].into(),
        vec![component],
        totals,
    );
    let phase = snapshot.phase();
    let id = repository
        .write_snapshot(SnapshotFile {
            snapshot,
            streams: vec![content.clone()],
            trees: vec![],
        })
        .await?;
    let rows: Vec<KindRow> = kinds
        .into_iter()
        .map(|(kind, objects)| KindRow { kind, objects })
        .collect();
    emit(context.output, &rows)?;
    for issue in &report.issues {
        eprintln!("warning: {}: {}", issue.item, issue.message);
    }
    for namespace in named.iter().filter(|n| !seen.contains(*n)) {
        eprintln!("warning: namespace {namespace}: no objects backed up from it (does it exist?)");
    }
    note_adopted(context, &stats);
    context.info(&format!(
        "snapshot {id} saved: {objects} objects of {} types in {:.2}s, {} of manifests, {} added",
        plan.types.len(),
        started.elapsed().as_secs_f64(),
        HumanBytes(content.size),
        HumanBytes(stats.added_bytes)
    ));
    if phase == Phase::PartiallyFailed {
        return Err(CliError {
            exit: Exit::Partial,
            error: anyhow!(
                "snapshot {} is PartiallyFailed: {} resource type(s) could not be read (see the warnings)",
                id.short(),
                report.warnings()
            ),
        });
    }
    Ok(Exit::Success)
}
