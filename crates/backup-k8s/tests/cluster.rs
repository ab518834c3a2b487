//! KubeCluster against the real control plane of the test environment (kwok nodes).

use backup_core::ClusterError;
use backup_core::cluster::{
    ConfigObjects, JobControl, JobState, ObjectRef, PortForwarder, ResourceStore, WorkloadControl,
    WorkloadKind,
};
use backup_k8s::{ConnectOptions, KubeCluster};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(60);

async fn cluster() -> KubeCluster {
    KubeCluster::connect(&ConnectOptions {
        kubeconfig: Some(backup_testing::kubeconfig()),
        context: None,
    })
    .await
    .unwrap()
}

/// A fresh namespace for one test.
async fn namespace(cluster: &KubeCluster, base: &str) -> String {
    let name = backup_testing::unique_name(base);
    cluster
        .apply(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
            false,
        )
        .await
        .unwrap();
    name
}

async fn drop_namespace(cluster: &KubeCluster, name: &str) {
    cluster
        .delete(&ObjectRef {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: name.into(),
        })
        .await
        .unwrap();
}

fn deployment(ns: &str, name: &str, replicas: i32, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "img", "ports": [{"name": "s3", "containerPort": 9000}]}]}}
        }
    })
}

async fn running_pods(cluster: &KubeCluster, ns: &str, selector: &str) -> usize {
    let pods = ResourceStore::list_page(cluster, &pod_type(), Some(ns), Some(selector), 100, None)
        .await
        .unwrap();
    pods.items
        .iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .count()
}

fn pod_type() -> backup_core::cluster::ApiResourceType {
    backup_core::cluster::ApiResourceType {
        group: "".into(),
        version: "v1".into(),
        kind: "Pod".into(),
        plural: "pods".into(),
        namespaced: true,
        verbs: vec![],
    }
}

async fn until<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    let start = std::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn scales_annotates_and_waits_for_pods_to_be_gone() {
    let c = cluster().await;
    let ns = namespace(&c, "k8s-scale").await;
    c.apply(
        &deployment(
            &ns,
            "api",
            2,
            json!({"stackstate.com/connects-to-stackgraph": "true"}),
        ),
        false,
    )
    .await
    .unwrap();
    c.apply(&deployment(&ns, "other", 1, json!({})), false)
        .await
        .unwrap();
    let statefulset = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "graph", "namespace": ns, "labels": {"stackstate.com/connects-to-stackgraph": "true"}},
        "spec": {"replicas": 1, "serviceName": "graph", "selector": {"matchLabels": {"app": "graph"}},
                 "template": {"metadata": {"labels": {"app": "graph"}}, "spec": {"containers": [{"name": "c", "image": "img"}]}}}
    });
    c.apply(&statefulset, false).await.unwrap();
    until("3 Running pods", async || {
        running_pods(&c, &ns, "app in (api,graph)").await == 3
    })
    .await;

    let found = c
        .workloads(&ns, "stackstate.com/connects-to-stackgraph=true")
        .await
        .unwrap();
    let names: Vec<_> = found
        .iter()
        .map(|w| (w.name.as_str(), w.kind, w.replicas))
        .collect();
    assert_eq!(
        names,
        [
            ("api", WorkloadKind::Deployment, 2),
            ("graph", WorkloadKind::StatefulSet, 1)
        ]
    );
    assert_eq!(found[0].pod_selector, "app=api");

    for w in &found {
        let mut changes = BTreeMap::new();
        changes.insert(
            "stackstate.com/pre-restore-replicas".to_string(),
            Some(w.replicas.to_string()),
        );
        c.annotate(w, &changes).await.unwrap();
        c.scale(w, 0).await.unwrap();
    }
    for w in &found {
        c.wait_pods_gone(&ns, &w.pod_selector, WAIT).await.unwrap();
    }
    assert_eq!(running_pods(&c, &ns, "app in (api,graph)").await, 0);

    let paused = c
        .workloads(&ns, "stackstate.com/connects-to-stackgraph=true")
        .await
        .unwrap();
    assert_eq!(
        paused[0]
            .annotations
            .get("stackstate.com/pre-restore-replicas")
            .map(String::as_str),
        Some("2")
    );
    assert_eq!(paused[0].replicas, 0);
    let mut removal = BTreeMap::new();
    removal.insert("stackstate.com/pre-restore-replicas".to_string(), None);
    c.annotate(&paused[0], &removal).await.unwrap();
    let after = c
        .workloads(&ns, "stackstate.com/connects-to-stackgraph=true")
        .await
        .unwrap();
    assert!(
        !after[0]
            .annotations
            .contains_key("stackstate.com/pre-restore-replicas")
    );

    let timeout = c
        .wait_pods_gone(&ns, "app=other", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        matches!(timeout, ClusterError::Timeout { .. }),
        "{timeout:?}"
    );
    drop_namespace(&c, &ns).await;
}

fn job(ns: &str, name: &str, fail: bool) -> Value {
    let mut labels = json!({});
    if fail {
        labels = json!({"pod-container-running-failed.stage.kwok.x-k8s.io": "true"});
    }
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"backoffLimit": 0, "template": {
            "metadata": {"labels": labels},
            "spec": {"restartPolicy": "Never",
                     "initContainers": [{"name": "wait", "image": "busybox"}],
                     "containers": [{"name": "restore", "image": "busybox"}]}}}
    })
}

#[tokio::test]
async fn runs_jobs_to_success_and_failure_with_logs() {
    let c = cluster().await;
    let ns = namespace(&c, "k8s-jobs").await;
    c.create_job(&ns, &job(&ns, "ok", false)).await.unwrap();
    c.create_job(&ns, &job(&ns, "bad", true)).await.unwrap();
    assert_eq!(
        c.wait_job(&ns, "ok", WAIT).await.unwrap(),
        JobState::Succeeded
    );
    assert!(matches!(
        c.wait_job(&ns, "bad", WAIT).await.unwrap(),
        JobState::Failed(_)
    ));
    assert_eq!(
        c.job_state(&ns, "ok").await.unwrap(),
        Some(JobState::Succeeded)
    );
    assert_eq!(c.job_state(&ns, "absent").await.unwrap(), None);

    let logs = c.job_logs(&ns, "bad").await.unwrap();
    let containers: Vec<_> = logs.iter().map(|l| l.container.as_str()).collect();
    assert_eq!(containers, ["wait", "restore"], "init containers first");
    assert!(
        logs[1].text.contains("simulated container log line"),
        "{logs:?}"
    );

    c.delete_job(&ns, "ok").await.unwrap();
    c.delete_job(&ns, "ok")
        .await
        .expect("deleting a missing Job is not an error");
    assert_eq!(c.job_state(&ns, "ok").await.unwrap(), None);
    let duplicate = c.create_job(&ns, &job(&ns, "bad", true)).await.unwrap_err();
    assert!(
        matches!(duplicate, ClusterError::Conflict(_)),
        "{duplicate:?}"
    );
    drop_namespace(&c, &ns).await;
}

#[tokio::test]
async fn discovers_lists_in_pages_gets_applies_and_deletes() {
    let c = cluster().await;
    let ns = namespace(&c, "k8s-res").await;
    let types = c.discover().await.unwrap().types;
    let deployments = types
        .iter()
        .find(|t| t.kind == "Deployment" && t.group == "apps")
        .expect("apps Deployment served");
    assert!(deployments.namespaced && deployments.verbs.iter().any(|v| v == "list"));
    assert!(types.iter().any(|t| t.kind == "Namespace" && !t.namespaced));

    let config_maps = types.iter().find(|t| t.kind == "ConfigMap").unwrap();
    for i in 0..7 {
        c.apply(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i}"), "namespace": ns, "labels": {"set": "a"}}, "data": {"i": i.to_string()}}), false).await.unwrap();
    }
    let (mut seen, mut token, mut pages) = (0, None, 0);
    loop {
        let page = c
            .list_page(config_maps, Some(&ns), Some("set=a"), 3, token)
            .await
            .unwrap();
        assert!(
            page.items
                .iter()
                .all(|i| i["kind"] == "ConfigMap" && i["apiVersion"] == "v1")
        );
        seen += page.items.len();
        pages += 1;
        token = page.continue_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!((seen, pages), (7, 3));

    let reference = ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.clone()),
        name: "cm-0".into(),
    };
    assert_eq!(c.get(&reference).await.unwrap().unwrap()["data"]["i"], "0");
    let updated = c.apply(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-0", "namespace": ns}, "data": {"i": "changed"}}), false).await.unwrap();
    assert_eq!(updated["data"]["i"], "changed");
    // A replace removes what another writer added (labels, keys); an apply would keep them.
    let replaced = c.replace(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-0", "namespace": ns}, "data": {"i": "0"}})).await.unwrap();
    assert_eq!(replaced["data"], json!({"i": "0"}));
    assert!(replaced["metadata"].get("labels").is_none(), "{replaced}");
    c.delete(&reference).await.unwrap();
    assert!(matches!(
        c.replace(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm-0", "namespace": ns}})).await,
        Err(ClusterError::NotFound(_))
    ));
    assert!(c.get(&reference).await.unwrap().is_none());
    c.delete(&reference)
        .await
        .expect("deleting a missing object is not an error");

    let unknown = ObjectRef {
        api_version: "example.com/v1".into(),
        kind: "Nothing".into(),
        namespace: None,
        name: "x".into(),
    };
    assert!(matches!(
        c.get(&unknown).await,
        Err(ClusterError::NotFound(_))
    ));
    drop_namespace(&c, &ns).await;
}

#[tokio::test]
async fn reads_config_maps_and_secrets() {
    let c = cluster().await;
    let ns = namespace(&c, "k8s-config").await;
    c.apply(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "suse-observability-backup-config", "namespace": ns}, "data": {"config": "stackgraph:\n  bucket: sts-stackgraph-backup\n"}}), false).await.unwrap();
    c.apply(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "suse-observability-backup-config", "namespace": ns}, "stringData": {"config": "minio:\n  secretKey: hunter22\n"}}), false).await.unwrap();
    let map = c
        .config_map(&ns, "suse-observability-backup-config")
        .await
        .unwrap()
        .unwrap();
    assert!(map["config"].contains("sts-stackgraph-backup"));
    let secret = c
        .secret(&ns, "suse-observability-backup-config")
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(secret["config"].expose()).contains("hunter22"));
    assert!(!format!("{secret:?}").contains("hunter22"));
    assert!(c.config_map(&ns, "absent").await.unwrap().is_none());
    assert!(c.secret(&ns, "absent").await.unwrap().is_none());
    drop_namespace(&c, &ns).await;
}

#[tokio::test]
async fn forwards_a_local_port_to_a_service() {
    let c = cluster().await;
    let ns = namespace(&c, "k8s-forward").await;
    c.apply(&deployment(&ns, "minio", 1, json!({})), false)
        .await
        .unwrap();
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "suse-observability-minio", "namespace": ns},
                         "spec": {"selector": {"app": "minio"}, "ports": [{"port": 9000, "targetPort": "s3"}]}});
    c.apply(&service, false).await.unwrap();
    until("minio pod Running", async || {
        running_pods(&c, &ns, "app=minio").await == 1
    })
    .await;

    let forward = c
        .forward_service(&ns, "suse-observability-minio", 9000)
        .await
        .unwrap();
    // kwok sends pod port 9000 to the test MinIO: two requests through one forward.
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(forward.local_addr())
            .await
            .unwrap();
        stream
            .write_all(
                b"GET /minio/health/ready HTTP/1.1\r\nHost: minio\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        let mut head = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(20), stream.read_exact(&mut head))
            .await
            .expect("answer in time")
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));
    }
    drop(forward);

    let missing = c
        .forward_service(&ns, "suse-observability-minio", 1234)
        .await
        .err()
        .unwrap();
    assert!(missing.to_string().contains("port 1234"), "{missing}");
    drop_namespace(&c, &ns).await;
}
