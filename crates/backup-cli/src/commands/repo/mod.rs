//! `kbackup repo init`, `kbackup backup stdin`, `kbackup snapshot list|cat`: the kbackup
//! repository format (issue 4, in progress).

use crate::cli::{RepoArgs, RepoCommand, SnapshotCommand, SnapshotFilter, StdinBackupArgs};
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use anyhow::anyhow;
use backup_core::cluster::SecretValue;
use backup_core::model::NextStep;
use backup_core::{Component, RepositoryLocation, RetentionDecision, RetentionPolicy, Totals};
use backup_repository::{
    CheckReport, InitOptions, PruneOptions, Repository, RepositoryError, SnapshotFile,
};
use backup_usecases::credentials::{CredentialError, PasswordSource, read_password};
use backup_usecases::selection::{self, SelectionError, SnapshotSelector};
use backup_usecases::snapshot::commit_stream;
use indicatif::HumanBytes;
use serde::Serialize;
use std::time::Instant;
mod keys;
pub mod tree;

use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

impl From<RepositoryError> for CliError {
    fn from(error: RepositoryError) -> Self {
        match error {
            RepositoryError::Storage(storage) => storage.into(),
            RepositoryError::NotARepository(_) => {
                CliError::user(anyhow!("{error} (create one with `kbackup repo init`)"))
            }
            RepositoryError::TargetNotEmpty { .. } => CliError::user(anyhow!(
                "{error}; use {} to replace them",
                crate::next_step::command(&NextStep::Overwrite)
            )),
            RepositoryError::EmptyRetentionPolicy => {
                CliError::user(anyhow!("{error}: give at least one --keep-* rule"))
            }
            other => CliError::user(other),
        }
    }
}

/// The password: `KBACKUP_PASSWORD`, else `--encryption-secret`, else `--password-file`
/// (held as a [`SecretValue`]: its Debug shows nothing).
async fn password(context: &Context, args: &RepoArgs) -> Result<SecretValue, CliError> {
    let source = if let Some(text) = std::env::var_os("KBACKUP_PASSWORD").filter(|p| !p.is_empty())
    {
        PasswordSource::Value(SecretValue::new(text.into_encoded_bytes()))
    } else if let Some(reference) = &args.encryption_secret {
        let (namespace, name) = reference.split_once('/').ok_or_else(|| {
            CliError::user(anyhow!(
                "--encryption-secret '{reference}' is not namespace/name"
            ))
        })?;
        PasswordSource::Secret {
            namespace: namespace.into(),
            name: name.into(),
        }
    } else if let Some(path) = &args.password_file {
        PasswordSource::File(path.clone())
    } else {
        return Err(CliError::user(anyhow!(
            "no password: set KBACKUP_PASSWORD, or pass --encryption-secret NAMESPACE/NAME or --password-file FILE"
        )));
    };
    let cluster = match source.needs_cluster() {
        true => Some(backup_k8s::KubeCluster::connect(&context.kube).await?),
        false => None,
    };
    read_password(&source, cluster.as_ref())
        .await
        .map_err(|error| match error {
            CredentialError::Cluster(error) => error.into(),
            other => CliError::user(other),
        })
}

async fn storage(
    context: &Context,
    args: &RepoArgs,
    create: bool,
) -> Result<std::sync::Arc<dyn backup_core::ObjectStorage>, CliError> {
    let location = RepositoryLocation::parse(&args.repo).map_err(CliError::user)?;
    let mut options = context.storage_options(&args.storage).await?;
    options.create_missing_dir = create;
    Ok(backup_storage::open(&location, &options).await?)
}

/// Opens the repository with the password from the environment or the password file.
pub(crate) async fn open(context: &Context, args: &RepoArgs) -> Result<Repository, CliError> {
    let password = password(context, args).await?;
    Ok(Repository::open(storage(context, args, false).await?, password.expose()).await?)
}

/// `kbackup repo ...`.
pub async fn repo(context: &Context, command: RepoCommand) -> CliResult {
    match command {
        RepoCommand::Init {
            repo,
            compression_level,
            kdf,
        } => {
            let password = password(context, &repo).await?;
            let options = InitOptions {
                compression_level,
                kdf: kdf.params().map_err(|e| CliError::user(anyhow!(e)))?,
                ..InitOptions::default()
            };
            let repository = Repository::init(
                storage(context, &repo, true).await?,
                password.expose(),
                options,
            )
            .await?;
            context.info(&format!(
                "created repository {} at {}",
                repository.config().id,
                repository.storage().location()
            ));
            Ok(Exit::Success)
        }
        RepoCommand::Info { repo } => keys::info(context, &repo).await,
        RepoCommand::Prune {
            repo,
            grace,
            repack_unused,
            dry_run,
        } => {
            let repository = open(context, &repo).await?;
            let options = PruneOptions {
                repack_unused,
                ..PruneOptions::new(grace, chrono::Utc::now())
            };
            let plan = repository.plan_prune(&options).await?;
            let planned = &plan.report;
            if !dry_run && planned.packs_deleted > 0 {
                context.confirm(&format!(
                    "Delete {} unused pack(s) ({}) from {}?",
                    planned.packs_deleted,
                    HumanBytes(planned.bytes_freed),
                    repo.repo
                ))?;
            }
            // The plan confirmed is the plan run: the repository is not read again.
            let report = match dry_run {
                true => plan.report,
                false => repository.execute_prune(plan).await?,
            };
            emit(context.output, std::slice::from_ref(&report))?;
            context.info(&format!(
                "{} pack(s), {} {}; {} pack(s) {} for deletion by a prune {} from now ({} marked earlier), \
                 {} of them repacked ({} copied); {} partly used kept whole; {} unused but younger than that kept",
                report.packs_deleted,
                HumanBytes(report.bytes_freed),
                if dry_run {
                    "would be freed (--dry-run)"
                } else {
                    "freed"
                },
                report.packs_marked,
                if dry_run { "would be marked" } else { "marked" },
                humantime::format_duration(grace),
                report.packs_awaiting,
                report.packs_repacked,
                HumanBytes(report.bytes_repacked),
                report.packs_partly_used,
                report.packs_too_recent,
            ));
            Ok(Exit::Success)
        }
        RepoCommand::Key { action } => keys::key(context, action).await,
        RepoCommand::Check { repo, read_data } => {
            let repository = open(context, &repo).await?;
            let percent = read_data.unwrap_or(0);
            let report = repository.check(percent).await?;
            emit(context.output, std::slice::from_ref(&report))?;
            for warning in &report.warnings {
                context.info(&format!("warning: {warning}"));
            }
            if report.errors.is_empty() {
                let scope = match percent {
                    0 => String::new(),
                    100 => ", all data read".into(),
                    _ => format!(
                        ", {} of {} packs read ({percent}%)",
                        report.packs_read, report.packs
                    ),
                };
                context.info(&format!(
                    "no problems found ({} snapshots, {} packs, {} blobs{scope})",
                    report.snapshots, report.packs, report.blobs
                ));
                return Ok(Exit::Success);
            }
            for error in &report.errors {
                eprintln!("problem: {error}");
            }
            Err(CliError::user(anyhow!(
                "{} problem(s) found in {}",
                report.errors.len(),
                repo.repo
            )))
        }
    }
}

/// The snapshot `wanted` names among those `among` selects: `latest` (the newest), or a
/// unique id prefix.
pub(crate) fn find_snapshot<'s>(
    snapshots: &'s [SnapshotFile],
    wanted: &str,
    among: &SnapshotFilter,
    repo: &str,
) -> Result<&'s SnapshotFile, CliError> {
    selection::find_snapshot(snapshots, wanted, &among.into()).map_err(|error| match error {
        SelectionError::NotFound { .. } => CliError::user(anyhow!("{error} in {repo}")),
        other => CliError::user(other),
    })
}

impl Tabular for backup_repository::PruneReport {
    fn headers() -> Vec<&'static str> {
        vec![
            "PACKS DELETED",
            "FREED",
            "MARKED",
            "AWAITING",
            "REPACKED",
            "PARTLY USED",
            "TOO RECENT",
            "INDEX REPLACED",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.packs_deleted.to_string(),
            HumanBytes(self.bytes_freed).to_string(),
            self.packs_marked.to_string(),
            self.packs_awaiting.to_string(),
            self.packs_repacked.to_string(),
            self.packs_partly_used.to_string(),
            self.packs_too_recent.to_string(),
            self.index_objects_replaced.to_string(),
        ]
    }
}

impl Tabular for CheckReport {
    fn headers() -> Vec<&'static str> {
        vec!["SNAPSHOTS", "PACKS", "BLOBS", "PACKS READ", "PROBLEMS"]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.snapshots.to_string(),
            self.packs.to_string(),
            self.blobs.to_string(),
            self.packs_read.to_string(),
            self.errors.len().to_string(),
        ]
    }
}

impl Tabular for RetentionDecision {
    fn headers() -> Vec<&'static str> {
        vec!["ID", "TIME", "KEEP", "REASONS"]
    }
    fn cells(&self) -> Vec<String> {
        let keep = if self.keep { "keep" } else { "remove" };
        vec![
            self.id.short().to_owned(),
            self.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            keep.into(),
            self.reasons.join(", "),
        ]
    }
}

/// `kbackup backup stdin --name NAME`: standard input as one component of a new snapshot.
pub async fn backup_stdin(context: &Context, args: StdinBackupArgs) -> CliResult {
    let StdinBackupArgs { repo, name, marks } = args;
    let repository = open(context, &repo).await?;
    let started = Instant::now();
    let (content, stats) = repository
        .backup_stream(&name, tokio::io::stdin().compat())
        .await?;
    let component = Component::new(&name, "stream").succeeded(content.size, started.elapsed());
    let totals = Totals {
        items: 1,
        bytes: content.size,
        added_bytes: stats.added_bytes,
    };
    let size = content.size;
    let (id, _) = commit_stream(
        &repository,
        marks.into(),
        Default::default(),
        component,
        content,
        totals,
    )
    .await?;
    note_adopted(context, stats.adopted_packs);
    context.info(&format!(
        "snapshot {} saved: {} read, {} of {} chunks new, {} added",
        id.short(),
        HumanBytes(size),
        stats.chunks - stats.deduplicated,
        stats.chunks,
        HumanBytes(stats.added_bytes)
    ));
    crate::output::write_stdout(format!("{id}\n").as_bytes())?;
    Ok(Exit::Success)
}

/// Says so when a backup reused packs an interrupted backup had uploaded without indexing.
pub(crate) fn note_adopted(context: &Context, adopted_packs: usize) {
    if adopted_packs > 0 {
        context.info(&format!(
            "reused {adopted_packs} packs an interrupted backup had uploaded"
        ));
    }
}

/// A snapshot as listed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotRow {
    id: String,
    time: String,
    source: String,
    components: Vec<String>,
    size: u64,
    tags: Vec<String>,
    labels: std::collections::BTreeMap<String, String>,
}

impl Tabular for SnapshotRow {
    fn headers() -> Vec<&'static str> {
        vec![
            "ID",
            "TIME",
            "SOURCE",
            "COMPONENTS",
            "SIZE",
            "TAGS",
            "LABELS",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.id[..8].to_owned(),
            self.time.clone(),
            self.source.clone(),
            self.components.join(","),
            HumanBytes(self.size).to_string(),
            self.tags.join(","),
            (self.labels.iter())
                .filter(|(key, _)| !key.starts_with("kbackup.io/"))
                .map(|(key, value)| format!("{key}={value}"))
                .collect::<Vec<_>>()
                .join(","),
        ]
    }
}

/// `kbackup snapshot ...`.
pub async fn snapshot(context: &Context, command: SnapshotCommand) -> CliResult {
    match command {
        SnapshotCommand::Delete {
            snapshot,
            repo,
            among,
        } => {
            let repository = open(context, &repo).await?;
            let snapshots = repository.snapshots().await?;
            let id = find_snapshot(&snapshots, &snapshot, &among, &repo.repo)?
                .snapshot
                .id
                .clone();
            context.confirm(&format!("Delete snapshot {id} from {}?", repo.repo))?;
            repository.delete_snapshot(&id).await?;
            context.info(&format!(
                "deleted snapshot {}; its data is freed by a later prune",
                id.short()
            ));
            Ok(Exit::Success)
        }
        SnapshotCommand::Diff {
            first,
            second,
            repo,
        } => super::cluster::diff(context, &repo, &first, &second).await,
        SnapshotCommand::Describe {
            snapshot,
            repo,
            among,
        } => super::cluster::describe(context, &repo, &snapshot, &among).await,
        SnapshotCommand::List { repo, among } => {
            let repository = open(context, &repo).await?;
            let selector = SnapshotSelector::from(&among);
            let rows: Vec<SnapshotRow> = repository
                .snapshots()
                .await?
                .into_iter()
                .filter(|file| selector.selects(&file.snapshot))
                .map(|file| SnapshotRow {
                    id: file.snapshot.id.to_string(),
                    time: file
                        .snapshot
                        .time
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    source: file.snapshot.source.clone(),
                    components: file
                        .snapshot
                        .components
                        .iter()
                        .map(|c| c.name.clone())
                        .collect(),
                    size: file.snapshot.totals.bytes,
                    tags: file.snapshot.tags.iter().cloned().collect(),
                    labels: file.snapshot.labels.clone(),
                })
                .collect();
            emit(context.output, &rows)?;
            Ok(Exit::Success)
        }
        SnapshotCommand::Forget {
            repo,
            keep_last,
            keep_hourly,
            keep_daily,
            keep_weekly,
            keep_monthly,
            keep_yearly,
            keep_within,
            keep_tag,
            dry_run,
        } => {
            let policy = RetentionPolicy {
                keep_last,
                keep_hourly,
                keep_daily,
                keep_weekly,
                keep_monthly,
                keep_yearly,
                keep_within,
                keep_tags: keep_tag,
                keep_failed: 0,
            };
            let repository = open(context, &repo).await?;
            let plan = repository.plan_forget(&policy).await?;
            emit(context.output, &plan.decisions)?;
            let removed = plan.removed().count();
            if dry_run || removed == 0 {
                context.info(&format!(
                    "{removed} snapshot(s) would be removed{}",
                    if dry_run {
                        " (--dry-run: nothing deleted)"
                    } else {
                        ""
                    }
                ));
                return Ok(Exit::Success);
            }
            context.confirm(&format!("Remove {removed} snapshot(s) from {}?", repo.repo))?;
            // Exactly what was shown: a snapshot written since is not judged by this plan.
            let removed = repository.forget(&plan).await?;
            context.info(&format!(
                "removed {removed} snapshot(s); their data is freed by a later prune"
            ));
            Ok(Exit::Success)
        }
        SnapshotCommand::Cat {
            repo,
            target,
            among,
        } => {
            let (wanted, component) = target.rsplit_once(':').ok_or_else(|| {
                CliError::user(anyhow!(
                    "expected ID:COMPONENT (ID may be `latest`), got '{target}'"
                ))
            })?;
            let repository = open(context, &repo).await?;
            let snapshots = repository.snapshots().await?;
            let file = find_snapshot(&snapshots, wanted, &among, &repo.repo)?;
            let content = file
                .streams
                .iter()
                .find(|s| s.name == component)
                .ok_or_else(|| {
                    CliError::user(anyhow!(
                        "snapshot {} has no stream component '{component}'",
                        file.snapshot.id.short()
                    ))
                })?;
            let index = repository.load_index().await?;
            repository
                .restore_stream(&index, content, tokio::io::stdout().compat_write())
                .await?;
            Ok(Exit::Success)
        }
    }
}
