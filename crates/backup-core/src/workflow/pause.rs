use super::{PRE_RESTORE_REPLICAS, RESTORE_IN_PROGRESS, RESTORE_STARTED_AT};
use crate::cluster::{ClusterError, Workload, WorkloadControl};
use crate::model::NextStep;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Why pausing or resuming failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// Another restore holds the lock: of the same data store, of one whose restores exclude
    /// this one's (StackGraph and settings, as `sts-backup` has them), or on a workload this
    /// restore would scale down.
    #[error("{}", locked_message(datastore, holder, started_at, workload))]
    Locked {
        /// The data store whose restore was refused.
        datastore: String,
        /// The data store whose restore holds the lock.
        holder: String,
        /// When the other restore started, as recorded.
        started_at: String,
        /// A workload carrying the lock.
        workload: String,
        /// Its namespace.
        namespace: String,
    },
    /// A recorded replica count cannot be read.
    #[error("workload {workload} has an unreadable {PRE_RESTORE_REPLICAS} annotation '{value}'")]
    BadAnnotation {
        /// The workload.
        workload: String,
        /// The value found.
        value: String,
    },
    /// The data store cannot do what was asked.
    #[error("{0}")]
    Unsupported(String),
    /// The cluster refused or failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl WorkflowError {
    /// What would clear the refusal: for a lock, finishing the other restore, or clearing a
    /// stale lock.
    pub fn next_steps(&self) -> Vec<NextStep> {
        match self {
            Self::Locked {
                holder, namespace, ..
            } => vec![
                NextStep::FinalizeRestore {
                    namespace: namespace.clone(),
                    data_store: holder.clone(),
                    operation: None,
                },
                NextStep::ClearRestoreLock {
                    namespace: namespace.clone(),
                },
            ],
            _ => Vec::new(),
        }
    }
}

fn locked_message(datastore: &str, holder: &str, started_at: &str, workload: &str) -> String {
    let held = format!("(started {started_at}, workload {workload})");
    if holder == datastore {
        format!("another {datastore} restore is already in progress {held}")
    } else if mutually_exclusive(datastore, holder) {
        format!(
            "a {holder} restore is in progress {held}: {datastore} and {holder} restores are mutually exclusive"
        )
    } else {
        format!(
            "a {holder} restore is in progress on a workload this {datastore} restore scales down {held}"
        )
    }
}

/// Whether restores of the two data stores may not run at the same time: a settings restore
/// writes StackGraph's data, so StackGraph and settings restores exclude each other (as
/// `sts-backup` has it, whichever tool holds the lock).
pub fn mutually_exclusive(a: &str, b: &str) -> bool {
    const STACKGRAPH_GROUP: [&str; 2] = ["stackgraph", "settings"];
    a == b || (STACKGRAPH_GROUP.contains(&a) && STACKGRAPH_GROUP.contains(&b))
}

/// A workload scaled down for a restore, with the replicas to give back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PausedWorkload {
    /// The workload (its replicas as they were before the restore).
    pub workload: Workload,
    /// Replicas recorded in its annotation.
    pub restore_replicas: i32,
}

impl std::fmt::Display for PausedWorkload {
    /// `server (2)`: its name and the replicas it gets back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.workload.name, self.restore_replicas)
    }
}

fn describe(w: &Workload) -> String {
    format!("{:?} {}/{}", w.kind, w.namespace, w.name)
}

/// What [`pause_workloads`] would do now, changing nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PausePlan {
    /// The workloads it would scale down (`Kind/name`), with their replicas.
    pub scale_down: Vec<(String, i32)>,
    /// Why it would refuse: another restore holds the lock (see [`pause_workloads`]).
    pub refused: Option<String>,
}

/// Plans [`pause_workloads`]: the workloads `selector` matches that run, and the lock.
pub async fn plan_pause(
    cluster: &(impl WorkloadControl + ?Sized),
    namespace: &str,
    selector: &str,
    datastore: &str,
) -> Result<PausePlan, WorkflowError> {
    let refused = lock_held(cluster, namespace, selector, datastore).await?;
    let scale_down = cluster
        .workloads(namespace, selector)
        .await?
        .into_iter()
        .filter(|w| w.replicas > 0)
        .map(|w| (format!("{:?}/{}", w.kind, w.name), w.replicas))
        .collect();
    Ok(PausePlan {
        scale_down,
        refused: refused.map(|locked| locked.to_string()),
    })
}

/// The refusal when a restore that excludes one of `datastore` holds the lock somewhere in
/// `namespace` (of the same data store, or of a mutually exclusive one), or when any restore
/// holds it on a workload `selector` matches (a restore must not take another's workloads).
async fn lock_held(
    cluster: &(impl WorkloadControl + ?Sized),
    namespace: &str,
    selector: &str,
    datastore: &str,
) -> Result<Option<WorkflowError>, ClusterError> {
    let lock = |w: &Workload| w.annotations.get(RESTORE_IN_PROGRESS).cloned();
    let mut holder = cluster
        .workloads(namespace, "")
        .await?
        .into_iter()
        .find(|w| lock(w).is_some_and(|held| mutually_exclusive(&held, datastore)));
    if holder.is_none() {
        holder = cluster
            .workloads(namespace, selector)
            .await?
            .into_iter()
            .find(|w| lock(w).is_some());
    }
    Ok(holder.map(|w| WorkflowError::Locked {
        datastore: datastore.to_owned(),
        holder: lock(&w).unwrap_or_default(),
        started_at: w
            .annotations
            .get(RESTORE_STARTED_AT)
            .cloned()
            .unwrap_or_else(|| "at an unknown time".into()),
        workload: describe(&w),
        namespace: namespace.to_owned(),
    }))
}

/// Refuses, as [`pause_workloads`] does, while another restore holds a lock that excludes
/// work on `datastore`: for work that needs the data store up and no restore running (the
/// backfill after a StackGraph v2 live restore).
pub async fn ensure_unlocked(
    cluster: &(impl WorkloadControl + ?Sized),
    namespace: &str,
    selector: &str,
    datastore: &str,
) -> Result<(), WorkflowError> {
    match lock_held(cluster, namespace, selector, datastore).await? {
        Some(locked) => Err(locked),
        None => Ok(()),
    }
}

/// Takes the restore lock and scales every matching workload with replicas down to 0, after
/// recording its replica count in an annotation; then waits (by watching) until the pods of
/// the scaled workloads are gone. The annotations are written before any scaling, so an
/// interruption at any point loses nothing. Refuses while another restore of `datastore`, or
/// of a data store whose restores exclude its own, holds the lock anywhere in the
/// namespace, or while any restore holds it on a workload `selector` matches.
pub async fn pause_workloads(
    cluster: &(impl WorkloadControl + ?Sized),
    namespace: &str,
    selector: &str,
    datastore: &str,
    now: DateTime<Utc>,
    pods_timeout: Duration,
) -> Result<Vec<PausedWorkload>, WorkflowError> {
    ensure_unlocked(cluster, namespace, selector, datastore).await?;
    let started_at = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut paused = Vec::new();
    for w in cluster.workloads(namespace, selector).await? {
        let mut changes = BTreeMap::from([
            (RESTORE_IN_PROGRESS.to_owned(), Some(datastore.to_owned())),
            (RESTORE_STARTED_AT.to_owned(), Some(started_at.clone())),
        ]);
        if w.replicas > 0 {
            changes.insert(
                PRE_RESTORE_REPLICAS.to_owned(),
                Some(w.replicas.to_string()),
            );
        }
        cluster.annotate(&w, &changes).await?;
        if w.replicas > 0 {
            paused.push(PausedWorkload {
                restore_replicas: w.replicas,
                workload: w,
            });
        }
    }
    for p in &paused {
        cluster.scale(&p.workload, 0).await?;
    }
    for p in &paused {
        cluster
            .wait_pods_gone(namespace, &p.workload.pod_selector, pods_timeout)
            .await?;
    }
    Ok(paused)
}

/// The workloads a restore of `datastore` paused, with the replicas to give back (0 for
/// those only locked): every workload whose lock names `datastore`, and those matching
/// `selector` with a recorded replica count but no lock (as a tool that records only the
/// replicas leaves them). Workloads locked by another data store's restore are never
/// included, so finishing one restore cannot wake up the users of another still running.
pub async fn paused_workloads(
    cluster: &(impl WorkloadControl + ?Sized),
    namespace: &str,
    datastore: &str,
    selector: &str,
) -> Result<Vec<PausedWorkload>, WorkflowError> {
    let selected: Vec<String> = cluster
        .workloads(namespace, selector)
        .await?
        .into_iter()
        .map(|w| describe(&w))
        .collect();
    let mut found = Vec::new();
    for w in cluster.workloads(namespace, "").await? {
        let recorded = w.annotations.get(PRE_RESTORE_REPLICAS);
        let ours = match w.annotations.get(RESTORE_IN_PROGRESS) {
            Some(lock) => lock == datastore,
            None => recorded.is_some() && selected.contains(&describe(&w)),
        };
        if !ours {
            continue;
        }
        let restore_replicas = match recorded {
            Some(value) => value
                .trim()
                .parse()
                .map_err(|_| WorkflowError::BadAnnotation {
                    workload: describe(&w),
                    value: value.clone(),
                })?,
            None => 0,
        };
        found.push(PausedWorkload {
            workload: w,
            restore_replicas,
        });
    }
    Ok(found)
}

/// Scales every workload a restore of `datastore` paused (see [`paused_workloads`]) back to
/// its recorded replicas and removes the restore annotations (the lock with them).
/// Idempotent: running it twice, or on a namespace with nothing paused, changes nothing.
pub async fn resume_workloads(
    cluster: &(impl WorkloadControl + ?Sized),
    namespace: &str,
    datastore: &str,
    selector: &str,
) -> Result<Vec<PausedWorkload>, WorkflowError> {
    let paused = paused_workloads(cluster, namespace, datastore, selector).await?;
    let clear: BTreeMap<String, Option<String>> = [
        PRE_RESTORE_REPLICAS,
        RESTORE_IN_PROGRESS,
        RESTORE_STARTED_AT,
    ]
    .iter()
    .map(|k| (k.to_string(), None))
    .collect();
    for p in &paused {
        if p.restore_replicas > 0 {
            cluster.scale(&p.workload, p.restore_replicas).await?;
        }
        // Annotations go last: if scaling fails, the record survives for the next attempt.
        cluster.annotate(&p.workload, &clear).await?;
    }
    Ok(paused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeCluster;

    const SELECTOR: &str = "stackstate.com/connects-to-stackgraph=true";
    const LABEL: (&str, &str) = ("stackstate.com/connects-to-stackgraph", "true");

    fn now() -> DateTime<Utc> {
        "2026-11-21T10:00:00Z".parse().unwrap()
    }

    /// A StackGraph restore's pause of the test installation.
    async fn pause_stackgraph(cluster: &FakeCluster) -> Result<Vec<PausedWorkload>, WorkflowError> {
        pause_workloads(
            cluster,
            "sts",
            SELECTOR,
            "stackgraph",
            now(),
            Duration::from_secs(1),
        )
        .await
    }

    /// An Elasticsearch restore's pause of the workloads labelled for it.
    async fn pause_elasticsearch(cluster: &FakeCluster) {
        pause_workloads(
            cluster,
            "sts",
            "observability.suse.com/scalable-during-es-restore=true",
            "elasticsearch",
            now(),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    }

    async fn resume_stackgraph(
        cluster: &FakeCluster,
    ) -> Result<Vec<PausedWorkload>, WorkflowError> {
        resume_workloads(cluster, "sts", "stackgraph", SELECTOR).await
    }

    fn installation() -> FakeCluster {
        let cluster = FakeCluster::new();
        cluster.add_workload("sts", "server", 2, &[LABEL], &[]);
        cluster.add_workload("sts", "receiver", 1, &[LABEL], &[]);
        cluster.add_workload("sts", "idle", 0, &[LABEL], &[]);
        cluster.add_workload("sts", "ui", 3, &[], &[]);
        cluster
    }

    #[tokio::test]
    async fn pause_records_before_scaling_then_waits() {
        let cluster = installation();
        let paused = pause_stackgraph(&cluster).await.unwrap();
        let names: Vec<_> = paused
            .iter()
            .map(|p| (p.workload.name.as_str(), p.restore_replicas))
            .collect();
        assert_eq!(names, [("server", 2), ("receiver", 1)]);
        let calls = cluster.calls();
        let first_scale = calls.iter().position(|c| c.starts_with("scale")).unwrap();
        assert!(
            calls[..first_scale]
                .iter()
                .filter(|c| c.starts_with("annotate"))
                .count()
                == 3,
            "{calls:?}"
        );
        assert_eq!(
            &calls[first_scale..],
            [
                "scale server 0",
                "scale receiver 0",
                "wait app=server",
                "wait app=receiver"
            ]
        );
        let server = cluster.workload("server");
        assert_eq!(server.replicas, 0);
        assert_eq!(server.annotations[PRE_RESTORE_REPLICAS], "2");
        assert_eq!(server.annotations[RESTORE_IN_PROGRESS], "stackgraph");
        assert_eq!(
            server.annotations[RESTORE_STARTED_AT],
            "2026-11-21T10:00:00Z"
        );
        assert!(
            !cluster
                .workload("idle")
                .annotations
                .contains_key(PRE_RESTORE_REPLICAS)
        );
        assert_eq!(
            cluster.workload("ui").replicas,
            3,
            "unselected workloads are untouched"
        );
    }

    #[tokio::test]
    async fn a_second_restore_is_refused_with_how_to_clear_the_lock() {
        let cluster = installation();
        pause_stackgraph(&cluster).await.unwrap();
        let calls_before = cluster.calls().len();
        let error = pause_stackgraph(&cluster).await.unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, WorkflowError::Locked { .. }));
        assert!(text.contains("2026-11-21T10:00:00Z"), "{text}");
        assert_eq!(
            error.next_steps(),
            [
                NextStep::FinalizeRestore {
                    namespace: "sts".into(),
                    data_store: "stackgraph".into(),
                    operation: None,
                },
                NextStep::ClearRestoreLock {
                    namespace: "sts".into()
                }
            ]
        );
        assert_eq!(cluster.calls().len(), calls_before, "nothing touched");
        // Another data store is not blocked by this lock.
        cluster.add_workload(
            "sts",
            "es-writer",
            1,
            &[("observability.suse.com/scalable-during-es-restore", "true")],
            &[],
        );
        pause_elasticsearch(&cluster).await;
    }

    #[tokio::test]
    async fn stackgraph_and_settings_restores_exclude_each_other_whoever_holds_the_lock() {
        let cluster = installation();
        pause_stackgraph(&cluster).await.unwrap();
        let selector = "app=settings-user";
        let planned = plan_pause(&cluster, "sts", selector, "settings").await;
        let paused = pause_workloads(
            &cluster,
            "sts",
            selector,
            "settings",
            now(),
            Duration::from_secs(1),
        )
        .await;
        let (planned, error) = (planned.unwrap().refused, paused);
        let error = error.unwrap_err();
        assert_eq!(planned, Some(error.to_string()));
        assert!(
            error
                .to_string()
                .contains("settings and stackgraph restores are mutually exclusive"),
            "{error}"
        );
        assert!(
            matches!(&error.next_steps()[0], NextStep::FinalizeRestore { data_store, .. } if data_store == "stackgraph")
        );
        resume_stackgraph(&cluster).await.unwrap();
        // The reverse, with the lock as sts-backup writes it for a settings restore.
        let cluster = installation();
        let locked = BTreeMap::from([
            (RESTORE_IN_PROGRESS.to_owned(), Some("settings".to_owned())),
            (
                RESTORE_STARTED_AT.to_owned(),
                Some("2026-11-21T09:00:00Z".to_owned()),
            ),
        ]);
        cluster
            .annotate(&cluster.workload("ui"), &locked)
            .await
            .unwrap();
        let error = pause_stackgraph(&cluster).await.unwrap_err();
        assert!(
            error
                .to_string()
                .contains("stackgraph and settings restores are mutually exclusive"),
            "{error}"
        );
        assert_eq!(cluster.workload("server").replicas, 2, "nothing scaled");
    }

    #[tokio::test]
    async fn a_restore_does_not_take_workloads_another_restore_holds() {
        let cluster = installation();
        pause_stackgraph(&cluster).await.unwrap();
        let error = pause_workloads(
            &cluster,
            "sts",
            SELECTOR,
            "victoriametrics",
            now(),
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("a stackgraph restore is in progress on a workload this victoriametrics restore scales down"),
            "{error}"
        );
        assert_eq!(
            cluster.workload("server").annotations[RESTORE_IN_PROGRESS],
            "stackgraph"
        );
    }

    #[tokio::test]
    async fn resume_restores_replicas_clears_annotations_and_is_idempotent() {
        let cluster = installation();
        pause_stackgraph(&cluster).await.unwrap();
        let resumed = resume_stackgraph(&cluster).await.unwrap();
        assert_eq!(
            resumed.len(),
            3,
            "server, receiver and the locked idle workload"
        );
        for (name, replicas) in [("server", 2), ("receiver", 1), ("idle", 0), ("ui", 3)] {
            let w = cluster.workload(name);
            assert_eq!(w.replicas, replicas, "{name}");
            assert!(w.annotations.is_empty(), "{name}: {:?}", w.annotations);
        }
        let calls = cluster.calls().len();
        assert!(resume_stackgraph(&cluster).await.unwrap().is_empty());
        assert_eq!(
            cluster.calls().len(),
            calls,
            "a second finalize changes nothing"
        );
    }

    #[tokio::test]
    async fn resume_finishes_what_the_go_tool_left() {
        // As sts-backup leaves a cluster after Ctrl-C: scaled to 0 with the three annotations.
        let cluster = FakeCluster::new();
        let annotations = [
            (PRE_RESTORE_REPLICAS, "4"),
            (RESTORE_IN_PROGRESS, "stackgraph"),
            (RESTORE_STARTED_AT, "2026-01-01T00:00:00Z"),
        ];
        cluster.add_workload("sts", "server", 0, &[LABEL], &annotations);
        resume_stackgraph(&cluster).await.unwrap();
        assert_eq!(cluster.workload("server").replicas, 4);
        assert!(cluster.workload("server").annotations.is_empty());
    }

    #[tokio::test]
    async fn a_failed_scale_up_keeps_the_record_for_the_next_attempt() {
        let cluster = installation();
        pause_stackgraph(&cluster).await.unwrap();
        cluster.fail_calls(&["scale server"]);
        assert!(resume_stackgraph(&cluster).await.is_err());
        assert_eq!(
            cluster.workload("server").annotations[PRE_RESTORE_REPLICAS],
            "2"
        );
        cluster.fail_calls(&[]);
        resume_stackgraph(&cluster).await.unwrap();
        assert_eq!(cluster.workload("server").replicas, 2);
    }

    #[tokio::test]
    async fn an_unreadable_record_is_named() {
        let cluster = FakeCluster::new();
        cluster.add_workload(
            "sts",
            "server",
            0,
            &[LABEL],
            &[(PRE_RESTORE_REPLICAS, "two")],
        );
        let error = resume_stackgraph(&cluster).await.unwrap_err();
        assert!(error.to_string().contains("'two'"), "{error}");
    }

    #[tokio::test]
    async fn finishing_one_data_store_never_wakes_the_users_of_another() {
        let cluster = installation();
        let es_label = ("observability.suse.com/scalable-during-es-restore", "true");
        cluster.add_workload("sts", "es-writer", 2, &[es_label], &[]);
        // A record without a lock (as a tool that records only replicas leaves it).
        cluster.add_workload("sts", "legacy", 0, &[LABEL], &[(PRE_RESTORE_REPLICAS, "1")]);
        pause_stackgraph(&cluster).await.unwrap();
        pause_elasticsearch(&cluster).await;
        let resumed = resume_stackgraph(&cluster).await.unwrap();
        let names: Vec<_> = resumed.iter().map(|p| p.workload.name.as_str()).collect();
        assert_eq!(names, ["server", "receiver", "idle", "legacy"]);
        assert_eq!(cluster.workload("legacy").replicas, 1);
        let writer = cluster.workload("es-writer");
        assert_eq!(
            writer.replicas, 0,
            "still paused by the Elasticsearch restore"
        );
        assert_eq!(writer.annotations[RESTORE_IN_PROGRESS], "elasticsearch");
    }
}
