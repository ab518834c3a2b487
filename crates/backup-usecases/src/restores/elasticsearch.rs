//! A RestoreSession of StackState's Elasticsearch, done by the operator through the engine
//! `kbackup elasticsearch restore` runs: the snapshot chosen in the installation's snapshot
//! repository (the newest, or the one a Snapshot object recorded), the workloads that write
//! to Elasticsearch scaled down, the datastream rolled over, the live indices deleted and the
//! snapshot's restore started; each later step looks at the recovery, and once it is over
//! scales the workloads back up and compares the restored document counts with the
//! snapshot's record.

use super::data_store::DataStoreRestore;
use crate::stackstate::{EsConnection, Installation};
use backup_core::NoProgress;
use backup_core::cluster::Cluster;
use backup_core::engine::RestoreEngine;
use backup_core::stackstate::ElasticsearchRestore;
use backup_elasticsearch::{
    EsClient, EsOperation, EsRestore, EsRestorePlan, RestoreRequest, SnapshotInfo, SnapshotRestore,
};

/// An Elasticsearch restore ready to start.
pub struct PreparedEs {
    opened: OpenedEs,
    plan: EsRestorePlan,
}

/// How a look at a running restore ended: still recovering, or over with the workloads
/// scaled back up (`name (replicas)`) and the error, if any.
pub enum EsProgress {
    /// Shards still recover.
    Recovering,
    /// Finalized.
    Over {
        /// Workloads scaled back up.
        scaled_up: Vec<String>,
        /// Why the component failed.
        error: Option<String>,
    },
}

/// The installation's Elasticsearch, connected (`elasticsearchUrl`, else a port-forward to
/// its Service), with its snapshot repository and restore settings.
struct OpenedEs {
    connection: EsConnection,
    repository: String,
    settings: ElasticsearchRestore,
}

impl OpenedEs {
    async fn open<C: Cluster + Clone>(
        cluster: &C,
        restore: &DataStoreRestore,
    ) -> Result<Self, String> {
        let installation =
            Installation::load(cluster.clone(), &restore.namespace, &restore.source, None)
                .await
                .map_err(|e| e.to_string())?;
        let connection = installation
            .connect_elasticsearch(restore.elasticsearch_url.as_deref(), None)
            .await
            .map_err(|e| e.to_string())?;
        let (repository, settings) = installation
            .elasticsearch_restore()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            connection,
            repository,
            settings,
        })
    }

    /// The restore engine on it, scaling workloads of `namespace` in `cluster`.
    fn engine<'a, C: Cluster>(
        &'a self,
        cluster: &'a C,
        namespace: &str,
    ) -> EsRestore<'a, C, EsClient> {
        EsRestore::new(
            &self.connection.client,
            cluster,
            namespace,
            &self.repository,
            self.settings.clone(),
        )
    }
}

/// The restore of all the configured indices from `snapshot`, nothing renamed; a PARTIAL
/// snapshot is refused (its failed shards would come back empty).
fn restore_of(snapshot: SnapshotInfo, indices: &str) -> SnapshotRestore {
    SnapshotRestore {
        snapshot,
        request: RestoreRequest {
            indices: indices.to_owned(),
            allow_partial: false,
            rename: None,
        },
    }
}

/// Chooses the snapshot and plans the restore; the snapshot's name (the operation) with it.
pub async fn prepare_es<C: Cluster + Clone>(
    cluster: &C,
    restore: &DataStoreRestore,
) -> Result<(String, PreparedEs), String> {
    let opened = OpenedEs::open(cluster, restore).await?;
    let (connection, repository) = (&opened.connection, &opened.repository);
    let snapshot = match &restore.archives {
        None => connection.snapshot_or_latest(repository, None).await,
        Some(names) => {
            let mut found = None;
            for name in names {
                if let Ok(snapshot) = connection.snapshot_or_latest(repository, Some(name)).await {
                    found = Some(snapshot);
                    break;
                }
            }
            found.ok_or_else(|| {
                crate::stackstate::StackStateError::NoSnapshots(format!(
                    "{repository} (none of {})",
                    names.join(", ")
                ))
            })
        }
    }
    .map_err(|e| e.to_string())?;
    let plan = opened
        .engine(cluster, &restore.namespace)
        .plan(&restore_of(snapshot, &opened.settings.indices_pattern))
        .await
        .map_err(|e| e.to_string())?;
    if let Some(refused) = &plan.refused {
        return Err(refused.clone());
    }
    Ok((plan.snapshot.clone(), PreparedEs { opened, plan }))
}

/// Locks, scales the writers down, rolls over, deletes the live indices and starts the
/// snapshot's restore; the workloads scaled down.
pub async fn start_es<C: Cluster + Clone>(
    cluster: &C,
    restore: &DataStoreRestore,
    prepared: PreparedEs,
) -> Result<Vec<String>, String> {
    let started = prepared
        .opened
        .engine(cluster, &restore.namespace)
        .start(&prepared.plan, chrono::Utc::now(), &NoProgress)
        .await
        .map_err(|e| e.to_string())?;
    Ok(started.paused.iter().map(ToString::to_string).collect())
}

/// Looks at the restore of `snapshot`: while shards recover, nothing changes (past the
/// deadline, the restore is reported unfinished, the workloads left down for
/// `check-and-finalize`: a recovery cannot be stopped without deleting what it restored);
/// once over, scales the workloads back up and compares the document counts.
pub async fn follow_es<C: Cluster + Clone>(
    cluster: &C,
    restore: &DataStoreRestore,
    snapshot: &str,
    stop: bool,
) -> Result<EsProgress, String> {
    let opened = OpenedEs::open(cluster, restore).await?;
    let engine = opened.engine(cluster, &restore.namespace);
    let operation = EsOperation {
        snapshot: snapshot.to_owned(),
        targets: vec![],
    };
    let state = engine
        .observe(&operation)
        .await
        .map_err(|e| e.to_string())?;
    if !state.is_over() {
        return match stop {
            false => Ok(EsProgress::Recovering),
            true => Err(format!(
                "the restore of snapshot {snapshot} did not end by the deadline; it goes on in Elasticsearch and the workloads stay scaled down until `kbackup elasticsearch check-and-finalize --operation-id {snapshot}`"
            )),
        };
    }
    let outcome = engine
        .finalize(&operation)
        .await
        .map_err(|e| e.to_string())?;
    if outcome.recovering_shards > 0 {
        return Ok(EsProgress::Recovering);
    }
    let scaled_up = outcome.resumed.iter().map(ToString::to_string).collect();
    let source = opened
        .connection
        .snapshot_or_latest(&opened.repository, Some(snapshot))
        .await
        .map_err(|e| e.to_string())?;
    let indices = &opened.settings.indices_pattern;
    let counts = engine
        .compare_counts(&source, &restore_of(source.clone(), indices).request)
        .await
        .map_err(|e| e.to_string())?;
    let mismatched: Vec<String> = counts
        .iter()
        .filter(|c| c.expected.is_some_and(|n| n != c.restored))
        .map(|c| {
            format!(
                "{}: {} documents, the snapshot recorded {}",
                c.index,
                c.restored,
                c.expected.unwrap_or_default()
            )
        })
        .collect();
    Ok(EsProgress::Over {
        scaled_up,
        error: (!mismatched.is_empty()).then(|| mismatched.join("; ")),
    })
}
