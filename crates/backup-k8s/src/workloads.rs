//! Scaling and annotating Deployments and StatefulSets; waiting for pods to be gone.

use crate::KubeCluster;
use crate::error::convert;
use async_trait::async_trait;
use backup_core::ClusterError;
use backup_core::cluster::{Workload, WorkloadControl, WorkloadKind};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use kube::{Api, Resource};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A label selector as the `key=value,key in (a,b)` string the API takes.
pub(crate) fn selector_string(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default().join(",");
        parts.push(match expr.operator.as_str() {
            "In" => format!("{} in ({values})", expr.key),
            "NotIn" => format!("{} notin ({values})", expr.key),
            "Exists" => expr.key.clone(),
            _ => format!("!{}", expr.key),
        });
    }
    parts.join(",")
}

fn workload<K: Resource>(
    kind: WorkloadKind,
    object: &K,
    replicas: Option<i32>,
    selector: &LabelSelector,
) -> Workload {
    let meta = object.meta();
    Workload {
        kind,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        replicas: replicas.unwrap_or(1),
        annotations: meta.annotations.clone().unwrap_or_default(),
        pod_selector: selector_string(selector),
    }
}

impl KubeCluster {
    async fn patch_workload(
        &self,
        target: &Workload,
        patch: serde_json::Value,
    ) -> Result<(), ClusterError> {
        let what = format!("{:?} {}/{}", target.kind, target.namespace, target.name);
        let params = PatchParams::default();
        match target.kind {
            WorkloadKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), &target.namespace);
                api.patch(&target.name, &params, &Patch::Merge(patch))
                    .await
                    .map(drop)
            }
            WorkloadKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), &target.namespace);
                api.patch(&target.name, &params, &Patch::Merge(patch))
                    .await
                    .map(drop)
            }
        }
        .map_err(|e| convert(&what, e))
    }
}

#[async_trait]
impl WorkloadControl for KubeCluster {
    async fn workloads(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<Workload>, ClusterError> {
        let params = ListParams::default().labels(label_selector);
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let statefulsets: Api<StatefulSet> = Api::namespaced(self.client.clone(), namespace);
        let what = |kind: &str| format!("{kind} in {namespace} matching '{label_selector}'");
        let mut found: Vec<Workload> = Vec::new();
        for d in deployments
            .list(&params)
            .await
            .map_err(|e| convert(&what("Deployments"), e))?
        {
            let spec = d.spec.clone().unwrap_or_default();
            found.push(workload(
                WorkloadKind::Deployment,
                &d,
                spec.replicas,
                &spec.selector,
            ));
        }
        for s in statefulsets
            .list(&params)
            .await
            .map_err(|e| convert(&what("StatefulSets"), e))?
        {
            let spec = s.spec.clone().unwrap_or_default();
            found.push(workload(
                WorkloadKind::StatefulSet,
                &s,
                spec.replicas,
                &spec.selector,
            ));
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    async fn scale(&self, workload: &Workload, replicas: i32) -> Result<(), ClusterError> {
        self.patch_workload(workload, json!({"spec": {"replicas": replicas}}))
            .await
    }

    async fn annotate(
        &self,
        workload: &Workload,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<(), ClusterError> {
        // A JSON merge patch removes keys set to null.
        self.patch_workload(workload, json!({"metadata": {"annotations": changes}}))
            .await
    }

    async fn wait_pods_gone(
        &self,
        namespace: &str,
        label_selector: &str,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let what = format!("pods in {namespace} matching '{label_selector}' to be gone");
        let deadline = Instant::now() + timeout;
        loop {
            let list = api
                .list(&ListParams::default().labels(label_selector))
                .await
                .map_err(|e| convert(&what, e))?;
            if list.items.is_empty() {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClusterError::Timeout {
                    what,
                    after: timeout,
                });
            }
            // Watch from the list's version until a pod is deleted (or the watch window ends),
            // then list again: no fixed sleeps, no missed deletions.
            let version = list.metadata.resource_version.unwrap_or_default();
            let window = left.as_secs().clamp(1, 290) as u32;
            let params = WatchParams::default()
                .labels(label_selector)
                .timeout(window);
            let mut events = api
                .watch(&params, &version)
                .await
                .map_err(|e| convert(&what, e))?
                .boxed();
            while let Some(event) = events.try_next().await.map_err(|e| convert(&what, e))? {
                if matches!(event, WatchEvent::Deleted(_) | WatchEvent::Error(_)) {
                    break;
                }
            }
        }
    }
}
