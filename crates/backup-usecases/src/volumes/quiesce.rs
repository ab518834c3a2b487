//! `--quiesce scale`: the workloads whose volumes are backed up are scaled to zero for the
//! backup (nothing writes while the movers read) and back afterwards. Their replica count is
//! kept in an annotation first, so a backup cut short is finished by scaling back from it.

use super::target::{VolumeWorkloadKind, WorkloadRef};
use backup_core::ClusterError;
use backup_core::cluster::{Workload, WorkloadControl, WorkloadKind};
use std::collections::BTreeMap;
use std::time::Duration;

/// The replicas a quiesced workload had, on the workload.
pub const QUIESCED_REPLICAS: &str = "kbackup.io/quiesced-replicas";
/// When it was quiesced.
pub const QUIESCED_AT: &str = "kbackup.io/quiesced-at";

/// How the data is made consistent besides hooks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Quiesce {
    /// The volumes are read while their pods run.
    #[default]
    None,
    /// Deployments and StatefulSets are scaled to zero for the backup, and back.
    Scale,
}

/// Whether a workload of this kind can be scaled down for a backup.
pub fn scalable(kind: VolumeWorkloadKind) -> bool {
    matches!(
        kind,
        VolumeWorkloadKind::Deployment | VolumeWorkloadKind::StatefulSet
    )
}

fn same(workload: &Workload, wanted: &WorkloadRef) -> bool {
    let kind = match workload.kind {
        WorkloadKind::Deployment => VolumeWorkloadKind::Deployment,
        WorkloadKind::StatefulSet => VolumeWorkloadKind::StatefulSet,
    };
    kind == wanted.kind && workload.name == wanted.name
}

/// Records each workload's replicas, scales it to zero, and waits until its pods are gone;
/// returns those scaled (a workload already at zero is left alone).
pub(crate) async fn scale_down<C: WorkloadControl + ?Sized>(
    cluster: &C,
    namespace: &str,
    workloads: &[WorkloadRef],
    timeout: Duration,
) -> Result<Vec<Workload>, ClusterError> {
    let live = cluster.workloads(namespace, "").await?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut scaled = Vec::new();
    for wanted in workloads {
        let Some(workload) = live.iter().find(|w| same(w, wanted)) else {
            continue;
        };
        if workload.replicas == 0 || workload.annotations.contains_key(QUIESCED_REPLICAS) {
            continue;
        }
        let changes = BTreeMap::from([
            (
                QUIESCED_REPLICAS.to_owned(),
                Some(workload.replicas.to_string()),
            ),
            (QUIESCED_AT.to_owned(), Some(now.clone())),
        ]);
        cluster.annotate(workload, &changes).await?;
        cluster.scale(workload, 0).await?;
        scaled.push(workload.clone());
    }
    for workload in &scaled {
        cluster
            .wait_pods_gone(namespace, &workload.pod_selector, timeout)
            .await?;
    }
    Ok(scaled)
}

/// Scales every workload of the namespace that a quiesced backup left at zero back to its
/// recorded replicas, and clears the record; returns `(workload, replicas)` of each.
pub async fn resume_quiesced<C: WorkloadControl + ?Sized>(
    cluster: &C,
    namespace: &str,
) -> Result<Vec<(String, i32)>, ClusterError> {
    let clear = BTreeMap::from([
        (QUIESCED_REPLICAS.to_owned(), None),
        (QUIESCED_AT.to_owned(), None),
    ]);
    let mut resumed = Vec::new();
    for workload in cluster.workloads(namespace, "").await? {
        let Some(recorded) = workload.annotations.get(QUIESCED_REPLICAS) else {
            continue;
        };
        let replicas: i32 = recorded.trim().parse().map_err(|_| {
            ClusterError::Invalid(format!(
                "{:?} {}: unreadable {QUIESCED_REPLICAS} annotation '{recorded}'",
                workload.kind, workload.name
            ))
        })?;
        cluster.scale(&workload, replicas).await?;
        cluster.annotate(&workload, &clear).await?;
        resumed.push((format!("{:?}/{}", workload.kind, workload.name), replicas));
    }
    Ok(resumed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::testing::FakeCluster;

    #[tokio::test]
    async fn scaled_down_with_a_record_and_back_from_it() {
        let cluster = FakeCluster::new();
        cluster.add_workload("demo", "db", 2, &[], &[]);
        cluster.add_workload("demo", "web", 0, &[], &[]);
        cluster.add_workload("demo", "other", 3, &[], &[]);
        let wanted = [
            WorkloadRef::parse("deploy/db").unwrap(),
            WorkloadRef::parse("deploy/web").unwrap(),
        ];
        let scaled = scale_down(&cluster, "demo", &wanted, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(scaled.len(), 1, "a workload at zero is left alone");
        let live = cluster.workloads("demo", "").await.unwrap();
        let db = live.iter().find(|w| w.name == "db").unwrap();
        assert_eq!(db.replicas, 0);
        assert_eq!(db.annotations[QUIESCED_REPLICAS], "2");
        assert_eq!(live.iter().find(|w| w.name == "other").unwrap().replicas, 3);
        let resumed = resume_quiesced(&cluster, "demo").await.unwrap();
        assert_eq!(resumed, [("Deployment/db".to_owned(), 2)]);
        let db = cluster.workload("db");
        assert_eq!(db.replicas, 2);
        assert!(!db.annotations.contains_key(QUIESCED_REPLICAS));
        assert!(
            resume_quiesced(&cluster, "demo").await.unwrap().is_empty(),
            "idempotent"
        );
    }
}
