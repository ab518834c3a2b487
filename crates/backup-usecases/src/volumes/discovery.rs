//! Finding the volumes to back up: the PersistentVolumeClaims the running pods of the chosen
//! workloads mount, each with the node it is in use on.

use super::target::{ClaimAccess, VolumeTarget, VolumeWorkloadKind, WorkloadRef};
use backup_core::ClusterError;
use backup_core::cluster::{ObjectRef, ResourceStore, for_each_page};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// Which volumes to take.
#[derive(Debug, Clone, Default)]
pub struct VolumeSelection {
    /// The namespace.
    pub namespace: String,
    /// Only these workloads (all when empty).
    pub workloads: Vec<WorkloadRef>,
    /// Only pods with these labels.
    pub selector: Option<String>,
    /// Only volumes of these names (the pod spec's volume name or the claim's name).
    pub include_volumes: Vec<String>,
    /// Never volumes of these names.
    pub exclude_volumes: Vec<String>,
}

impl VolumeSelection {
    fn takes(&self, volume: &str, claim: &str) -> bool {
        let named = |names: &[String]| names.iter().any(|n| n == volume || n == claim);
        (self.include_volumes.is_empty() || named(&self.include_volumes))
            && !named(&self.exclude_volumes)
    }
}

/// A volume found but not backed up, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedVolume {
    /// The workload.
    pub workload: WorkloadRef,
    /// The claim.
    pub claim: String,
    /// Why.
    pub reason: String,
}

/// What discovery found.
#[derive(Debug, Clone, Default)]
pub struct FoundVolumes {
    /// The volumes to back up, by component name.
    pub targets: Vec<VolumeTarget>,
    /// Volumes that cannot be backed up.
    pub skipped: Vec<SkippedVolume>,
}

/// Why the volumes could not be found.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The cluster failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A workload asked for has no running pod with a claim.
    #[error(
        "{workload} in namespace {namespace} has no running pod that mounts a PersistentVolumeClaim"
    )]
    NoVolumes {
        /// The workload.
        workload: WorkloadRef,
        /// The namespace.
        namespace: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PodView {
    metadata: MetaView,
    spec: PodSpecView,
    status: PodStatusView,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct MetaView {
    name: String,
    owner_references: Vec<OwnerView>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct OwnerView {
    kind: String,
    name: String,
    controller: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PodSpecView {
    node_name: String,
    volumes: Vec<VolumeView>,
    tolerations: Vec<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct VolumeView {
    name: String,
    persistent_volume_claim: Option<ClaimSourceView>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ClaimSourceView {
    claim_name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PodStatusView {
    phase: String,
}

/// Finds the volumes the selection names.
pub async fn find_volumes<C: ResourceStore + ?Sized>(
    cluster: &C,
    selection: &VolumeSelection,
) -> Result<FoundVolumes, DiscoveryError> {
    let namespace = selection.namespace.as_str();
    let mut pods = Vec::new();
    for_each_page(
        cluster,
        &super::pod_type(),
        Some(namespace),
        selection.selector.as_deref(),
        500,
        |items| pods.extend(items),
    )
    .await?;
    let mut owners = OwnerCache::default();
    let mut found = FoundVolumes::default();
    let mut taken = BTreeSet::new();
    let mut claims: BTreeMap<String, Option<ClaimAccess>> = BTreeMap::new();
    for value in pods {
        // A pod the API server sends that does not have this shape is not ours to judge:
        // it is left out, as any pod without claims.
        let Ok(pod) = serde_json::from_value::<PodView>(value) else {
            continue;
        };
        let Some(workload) = owners.workload_of(cluster, namespace, &pod).await? else {
            continue;
        };
        if !selection.workloads.is_empty() && !selection.workloads.contains(&workload) {
            continue;
        }
        for volume in &pod.spec.volumes {
            let Some(source) = &volume.persistent_volume_claim else {
                continue;
            };
            let claim = source.claim_name.clone();
            if claim.is_empty() || !selection.takes(&volume.name, &claim) {
                continue;
            }
            let member = match workload.kind {
                VolumeWorkloadKind::StatefulSet => pod.metadata.name.clone(),
                _ => claim.clone(),
            };
            if pod.status.phase != "Running" || pod.spec.node_name.is_empty() {
                continue;
            }
            if !taken.insert((workload.clone(), member.clone(), volume.name.clone())) {
                continue;
            }
            let access = match claims.get(&claim) {
                Some(access) => *access,
                None => {
                    let access = claim_access(cluster, namespace, &claim).await?;
                    claims.insert(claim.clone(), access);
                    access
                }
            };
            let Some(access) = access else {
                found.skipped.push(SkippedVolume {
                    workload: workload.clone(),
                    claim,
                    reason: "the claim is not bound".into(),
                });
                continue;
            };
            found.targets.push(VolumeTarget {
                namespace: namespace.to_owned(),
                workload: workload.clone(),
                member,
                volume: volume.name.clone(),
                claim,
                pod: pod.metadata.name.clone(),
                node: pod.spec.node_name.clone(),
                access,
                tolerations: serde_json::Value::Array(pod.spec.tolerations.clone()),
            });
        }
    }
    for workload in &selection.workloads {
        let any = found.targets.iter().any(|t| &t.workload == workload)
            || found.skipped.iter().any(|s| &s.workload == workload);
        if !any {
            return Err(DiscoveryError::NoVolumes {
                workload: workload.clone(),
                namespace: namespace.to_owned(),
            });
        }
    }
    found.targets.sort_by_key(VolumeTarget::component);
    Ok(found)
}

/// How a claim may be mounted; `None` when it is missing or not bound.
async fn claim_access<C: ResourceStore + ?Sized>(
    cluster: &C,
    namespace: &str,
    claim: &str,
) -> Result<Option<ClaimAccess>, ClusterError> {
    let object = cluster
        .get(&ObjectRef::namespaced(
            "v1",
            "PersistentVolumeClaim",
            namespace,
            claim,
        ))
        .await?;
    let Some(object) = object else {
        return Ok(None);
    };
    if object["status"]["phase"].as_str() != Some("Bound") {
        return Ok(None);
    }
    let modes = object["spec"]["accessModes"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m.as_str()).collect::<Vec<_>>())
        .unwrap_or_default();
    Ok(Some(ClaimAccess::of_modes(modes)))
}

/// The Deployments of ReplicaSets, looked up once each.
#[derive(Default)]
struct OwnerCache {
    replica_sets: BTreeMap<String, Option<String>>,
}

impl OwnerCache {
    /// The workload a pod belongs to; `None` for pods of Jobs (they end on their own).
    async fn workload_of<C: ResourceStore + ?Sized>(
        &mut self,
        cluster: &C,
        namespace: &str,
        pod: &PodView,
    ) -> Result<Option<WorkloadRef>, ClusterError> {
        let own = |kind, name: &str| {
            Some(WorkloadRef {
                kind,
                name: name.to_owned(),
            })
        };
        let Some(owner) = pod.metadata.owner_references.iter().find(|o| o.controller) else {
            return Ok(own(VolumeWorkloadKind::Pod, &pod.metadata.name));
        };
        Ok(match owner.kind.as_str() {
            "StatefulSet" => own(VolumeWorkloadKind::StatefulSet, &owner.name),
            "DaemonSet" => own(VolumeWorkloadKind::DaemonSet, &owner.name),
            "Job" => None,
            "ReplicaSet" => match self.deployment_of(cluster, namespace, &owner.name).await? {
                Some(deployment) => own(VolumeWorkloadKind::Deployment, &deployment),
                None => own(VolumeWorkloadKind::Pod, &pod.metadata.name),
            },
            _ => own(VolumeWorkloadKind::Pod, &pod.metadata.name),
        })
    }

    async fn deployment_of<C: ResourceStore + ?Sized>(
        &mut self,
        cluster: &C,
        namespace: &str,
        replica_set: &str,
    ) -> Result<Option<String>, ClusterError> {
        if let Some(known) = self.replica_sets.get(replica_set) {
            return Ok(known.clone());
        }
        let object = cluster
            .get(&ObjectRef::namespaced(
                "apps/v1",
                "ReplicaSet",
                namespace,
                replica_set,
            ))
            .await?;
        let deployment = object.and_then(|rs| {
            let meta: MetaView = serde_json::from_value(rs["metadata"].clone()).ok()?;
            meta.owner_references
                .into_iter()
                .find(|o| o.controller && o.kind == "Deployment")
                .map(|o| o.name)
        });
        self.replica_sets
            .insert(replica_set.to_owned(), deployment.clone());
        Ok(deployment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::testing::FakeCluster;
    use serde_json::json;

    fn pod(
        name: &str,
        owner: Option<(&str, &str)>,
        claims: &[(&str, &str)],
        phase: &str,
    ) -> serde_json::Value {
        let owners: Vec<_> = owner
            .into_iter()
            .map(|(kind, name)| json!({"kind": kind, "name": name, "controller": true}))
            .collect();
        let volumes: Vec<_> = claims
            .iter()
            .map(|(volume, claim)| json!({"name": volume, "persistentVolumeClaim": {"claimName": claim}}))
            .chain([json!({"name": "config", "configMap": {"name": "c"}})])
            .collect();
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "demo", "ownerReferences": owners},
            "spec": {"nodeName": "n1", "volumes": volumes,
                "tolerations": [{"key": "k", "operator": "Exists"}]},
            "status": {"phase": phase}})
    }

    fn claim(name: &str, modes: &[&str], phase: &str) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"accessModes": modes}, "status": {"phase": phase}})
    }

    fn cluster() -> FakeCluster {
        let c = FakeCluster::new();
        c.insert(&pod(
            "db-0",
            Some(("StatefulSet", "db")),
            &[("data", "data-db-0")],
            "Running",
        ));
        c.insert(&pod(
            "db-1",
            Some(("StatefulSet", "db")),
            &[("data", "data-db-1")],
            "Running",
        ));
        c.insert(&pod(
            "web-1-a",
            Some(("ReplicaSet", "web-1")),
            &[("files", "web"), ("cache", "web-cache")],
            "Running",
        ));
        c.insert(&pod(
            "web-1-b",
            Some(("ReplicaSet", "web-1")),
            &[("files", "web"), ("cache", "web-cache")],
            "Running",
        ));
        c.insert(&pod(
            "once",
            Some(("Job", "once")),
            &[("data", "job-data")],
            "Running",
        ));
        c.insert(&pod("solo", None, &[("data", "solo-data")], "Pending"));
        c.insert(&pod("exclusive", None, &[("data", "rwop")], "Running"));
        c.insert(&json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-1", "namespace": "demo",
                "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": true}]}}));
        for name in ["data-db-0", "data-db-1", "web", "job-data", "solo-data"] {
            c.insert(&claim(name, &["ReadWriteOnce"], "Bound"));
        }
        c.insert(&claim("web-cache", &["ReadWriteMany"], "Bound"));
        c.insert(&claim("rwop", &["ReadWriteOncePod"], "Bound"));
        c
    }

    fn selection() -> VolumeSelection {
        VolumeSelection {
            namespace: "demo".into(),
            ..VolumeSelection::default()
        }
    }

    #[tokio::test]
    async fn every_claim_of_running_workload_pods_once() {
        let found = find_volumes(&cluster(), &selection()).await.unwrap();
        let names: Vec<String> = found.targets.iter().map(VolumeTarget::component).collect();
        assert_eq!(
            names,
            [
                "/demo/deployment/web/web-cache/cache",
                "/demo/deployment/web/web/files",
                "/demo/pod/exclusive/rwop/data",
                "/demo/statefulset/db/db-0/data",
                "/demo/statefulset/db/db-1/data",
            ]
        );
        let cache = &found.targets[0];
        assert_eq!(cache.access, ClaimAccess::ManyNodes);
        assert_eq!(cache.node, "n1");
        assert_eq!(cache.tolerations[0]["key"], "k");
        assert_eq!(found.targets[2].access, ClaimAccess::OnePod);
        assert!(found.skipped.is_empty(), "{:?}", found.skipped);
    }

    #[tokio::test]
    async fn workloads_and_volume_names_narrow_it() {
        let mut only = selection();
        only.workloads = vec![WorkloadRef::parse("deploy/web").unwrap()];
        only.exclude_volumes = vec!["web-cache".into()];
        let found = find_volumes(&cluster(), &only).await.unwrap();
        assert_eq!(found.targets.len(), 1);
        assert_eq!(found.targets[0].volume, "files");
        only.include_volumes = vec!["cache".into()];
        only.exclude_volumes.clear();
        let found = find_volumes(&cluster(), &only).await.unwrap();
        assert_eq!(found.targets[0].claim, "web-cache");
        only.workloads = vec![WorkloadRef::parse("sts/gone").unwrap()];
        let error = find_volumes(&cluster(), &only).await.unwrap_err();
        assert!(error.to_string().contains("statefulset/gone"), "{error}");
    }
}
