//! `kbackup backup cluster`.

use crate::cli::ClusterBackupArgs;
use crate::commands::volumes::{hooks_file, mover_settings, report_moved};
use crate::context::Context;
use crate::exit::{CliError, CliResult, Exit};
use crate::output::{Tabular, emit};
use crate::repository::{note_adopted, open};
use anyhow::anyhow;
use backup_core::model::Phase;
use backup_core::resources::Cleaning;
use backup_k8s::KubeCluster;
use backup_usecases::cluster::{
    BackupOptions, ClusterBackupError, backup as back_up, backup_with_volumes,
};
use backup_usecases::volumes::backup::VolumeOptions;
use indicatif::HumanBytes;
use serde::Serialize;

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

impl From<ClusterBackupError> for CliError {
    fn from(error: ClusterBackupError) -> Self {
        match error {
            ClusterBackupError::Cluster(error) => error.into(),
            ClusterBackupError::Repository(error) => error.into(),
            other => CliError::user(other),
        }
    }
}

/// Lists the selected objects, streams them into the repository as the `manifests`
/// component of a new snapshot, and reports what was taken and what was refused.
pub async fn backup(context: &Context, args: ClusterBackupArgs) -> CliResult {
    let options = BackupOptions {
        filter: args.filter.into(),
        cleaning: Cleaning {
            keep_status: args.keep_status,
            drop_last_applied: args.drop_last_applied,
        },
        output_dir: args.output_dir,
        concurrency: args.workers,
        marks: args.marks.into(),
    };
    let volumes = match args.include_volumes {
        true => Some(VolumeOptions {
            mover: mover_settings(context, &args.repo, &args.mover).await?,
            hooks: hooks_file(args.hooks.as_deref())?,
            force: false,
            quiesce: args.quiesce.into(),
        }),
        false => None,
    };
    let repository = open(context, &args.repo).await?;
    let cluster = KubeCluster::connect(&context.kube).await?;
    let progress = context.progress();
    let (done, moved) = match &volumes {
        Some(volumes) => {
            let (done, moved) =
                backup_with_volumes(&repository, &cluster, options, volumes, &progress).await?;
            (done, Some(moved))
        }
        None => (
            back_up(&repository, &cluster, options, &progress).await?,
            None,
        ),
    };
    let rows: Vec<KindRow> = done
        .kinds
        .iter()
        .map(|(kind, objects)| KindRow {
            kind: kind.clone(),
            objects: *objects,
        })
        .collect();
    emit(context.output, &rows)?;
    for issue in &done.report.issues {
        eprintln!("warning: {}: {}", issue.item, issue.message);
    }
    for namespace in &done.empty_namespaces {
        eprintln!("warning: namespace {namespace}: no objects backed up from it (does it exist?)");
    }
    note_adopted(context, done.adopted_packs);
    context.info(&format!(
        "snapshot {} saved: {} objects of {} types in {:.2}s, {} of manifests, {} added",
        done.id,
        done.objects(),
        done.types,
        done.duration.as_secs_f64(),
        HumanBytes(done.size),
        HumanBytes(done.added_bytes)
    ));
    if let Some(moved) = &moved {
        report_moved(context, &moved.skipped, &moved.hooks, &moved.volumes);
        for volume in &moved.volumes {
            context.info(&format!(
                "volume {} (claim {}): {:?}, {} files, {}, {} added{}",
                volume.component,
                volume.claim,
                volume.phase,
                volume.files,
                HumanBytes(volume.bytes),
                HumanBytes(volume.added_bytes),
                volume
                    .error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
        }
        if moved.phase() != Phase::Succeeded {
            return Err(CliError {
                exit: Exit::Partial,
                error: anyhow!(
                    "snapshot {} is {:?}: not every volume was backed up (see above)",
                    done.id.short(),
                    done.phase
                ),
            });
        }
    }
    if done.phase == Phase::PartiallyFailed {
        return Err(CliError {
            exit: Exit::Partial,
            error: anyhow!(
                "snapshot {} is PartiallyFailed: {} resource type(s) could not be read (see the warnings)",
                done.id.short(),
                done.report.warnings()
            ),
        });
    }
    Ok(Exit::Success)
}
