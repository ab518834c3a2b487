//! Smoke tests that prove each test server is real: a Kubernetes control plane whose
//! controllers and kwok nodes run workloads, MinIO, Azurite and Elasticsearch.
//! Needs `cargo xtask env up` (or KBACKUP_TEST_KUBECONFIG for a cluster of your own).

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it yields `Some`, or panics after `timeout` naming `what`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

mod kubernetes {
    use super::eventually;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::{Namespace, Pod};
    use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
    use kube::config::{KubeConfigOptions, Kubeconfig};
    use kube::{Api, Client, Config};
    use serde_json::json;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const WAIT: Duration = Duration::from_secs(60);

    async fn client() -> Client {
        let kubeconfig = Kubeconfig::read_from(backup_testing::kubeconfig()).unwrap();
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
        Client::try_from(config).unwrap()
    }

    /// A fresh namespace (each test deletes its own at the end).
    async fn namespace(client: &Client, base: &str) -> String {
        let name = backup_testing::unique_name(base);
        let api: Api<Namespace> = Api::all(client.clone());
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .unwrap();
        name
    }

    async fn delete_namespace(client: &Client, name: &str) {
        let api: Api<Namespace> = Api::all(client.clone());
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }

    async fn pods(client: &Client, ns: &str, selector: &str) -> Vec<Pod> {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        api.list(&ListParams::default().labels(selector))
            .await
            .unwrap()
            .items
    }

    fn running(pod: &Pod) -> bool {
        pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            && pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some()
    }

    #[tokio::test]
    async fn a_deployment_gets_running_pods_and_scaling_to_zero_removes_them() {
        let client = client().await;
        let ns = namespace(&client, "smoke-deploy").await;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        let deployment = json!({
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
            }
        });
        deployments
            .create(
                &PostParams::default(),
                &serde_json::from_value(deployment).unwrap(),
            )
            .await
            .unwrap();
        let running_pods = eventually("3 Running pods", WAIT, || async {
            let pods = pods(&client, &ns, "app=web").await;
            (pods.len() == 3 && pods.iter().all(running)).then_some(pods)
        })
        .await;
        let owner = running_pods[0].metadata.owner_references.as_ref().unwrap()[0]
            .kind
            .clone();
        assert_eq!(
            owner, "ReplicaSet",
            "pods are created by the Deployment's ReplicaSet"
        );

        deployments
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 0}})),
            )
            .await
            .unwrap();
        eventually("pods gone after scaling to 0", WAIT, || async {
            pods(&client, &ns, "app=web").await.is_empty().then_some(())
        })
        .await;
        delete_namespace(&client, &ns).await;
    }

    fn job(name: &str, labels: serde_json::Value) -> Job {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}
                }
            }
        }))
        .unwrap()
    }

    fn condition(job: &Job, kind: &str) -> bool {
        job.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == kind && c.status == "True"))
    }

    #[tokio::test]
    async fn a_job_completes_and_a_failing_job_fails() {
        let client = client().await;
        let ns = namespace(&client, "smoke-job").await;
        let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
        jobs.create(&PostParams::default(), &job("ok", json!({"app": "ok"})))
            .await
            .unwrap();
        jobs.create(
            &PostParams::default(),
            &job(
                "bad",
                json!({"app": "bad", "pod-container-running-failed.stage.kwok.x-k8s.io": "true"}),
            ),
        )
        .await
        .unwrap();
        eventually("Job ok Complete", WAIT, || async {
            condition(&jobs.get("ok").await.unwrap(), "Complete").then_some(())
        })
        .await;
        eventually("Job bad Failed", WAIT, || async {
            condition(&jobs.get("bad").await.unwrap(), "Failed").then_some(())
        })
        .await;
        let failed = pods(&client, &ns, "app=bad").await;
        assert_eq!(
            failed[0].status.as_ref().unwrap().phase.as_deref(),
            Some("Failed")
        );
        delete_namespace(&client, &ns).await;
    }

    #[tokio::test]
    async fn logs_and_port_forward_reach_local_targets() {
        let client = client().await;
        let ns = namespace(&client, "smoke-forward").await;
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let pod = json!({"metadata": {"name": "minio-0", "labels": {"app": "minio"}}, "spec": {"containers": [{"name": "minio", "image": "minio", "ports": [{"containerPort": 9000}]}]}});
        api.create(
            &PostParams::default(),
            &serde_json::from_value(pod).unwrap(),
        )
        .await
        .unwrap();
        eventually("pod Running", WAIT, || async {
            running(&api.get("minio-0").await.unwrap()).then_some(())
        })
        .await;

        let logs = api.logs("minio-0", &Default::default()).await.unwrap();
        assert!(logs.contains("simulated container log line"), "{logs}");

        // Port 9000 of any pod is forwarded by kwok to the test MinIO.
        let mut forwarder = api.portforward("minio-0", &[9000]).await.unwrap();
        let mut stream = forwarder.take_stream(9000).unwrap();
        stream
            .write_all(
                b"GET /minio/health/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        // Read the status line only: a closed remote does not end the forwarded stream.
        let mut response = Vec::new();
        let read_status = async {
            let mut buf = [0u8; 256];
            while !response.windows(2).any(|w| w == b"\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "port-forward stream ended before a response");
                response.extend_from_slice(&buf[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(20), read_status)
            .await
            .expect("no answer through the port-forward in 20 s");
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        drop(stream);
        forwarder.abort();
        delete_namespace(&client, &ns).await;
    }
}

mod minio {
    use backup_core::{ObjectStorageExt, RepositoryLocation, StorageError};
    use backup_storage::{Secret, StorageOptions, open};
    use bytes::Bytes;

    fn options(secret: &str) -> StorageOptions {
        let server = backup_testing::s3();
        StorageOptions {
            endpoint: Some(server.endpoint),
            access_key_id: Some(server.access_key_id),
            secret_access_key: Some(Secret::new(secret)),
            max_retries: 1,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn put_get_list_and_a_wrong_secret_is_rejected() {
        let server = backup_testing::s3();
        let url = format!(
            "s3://{}/{}",
            server.bucket,
            backup_testing::unique_name("smoke")
        );
        let location = RepositoryLocation::parse(&url).unwrap();
        let storage = open(&location, &options(&server.secret_access_key))
            .await
            .unwrap();
        storage
            .put_bytes("hello.txt", Bytes::from_static(b"hello minio"))
            .await
            .unwrap();
        assert_eq!(storage.get_bytes("hello.txt").await.unwrap(), "hello minio");
        assert_eq!(storage.list_all("").await.unwrap().len(), 1);

        let wrong = open(&location, &options("not-the-secret")).await.unwrap();
        assert!(matches!(
            wrong.get_bytes("hello.txt").await,
            Err(StorageError::AccessDenied { .. })
        ));
    }
}

mod azurite {
    use backup_core::{ObjectStorageExt, RepositoryLocation};
    use backup_storage::{Secret, StorageOptions, open};
    use bytes::Bytes;

    #[tokio::test]
    async fn upload_and_list_with_prefix() {
        let server = backup_testing::azure();
        let url = format!(
            "az://{}/{}",
            server.container,
            backup_testing::unique_name("smoke")
        );
        let options = StorageOptions {
            azure_account: Some(server.account),
            azure_key: Some(Secret::new(server.key)),
            azure_endpoint: Some(server.endpoint),
            ..Default::default()
        };
        let storage = open(&RepositoryLocation::parse(&url).unwrap(), &options)
            .await
            .unwrap();
        for key in ["a/1", "a/2", "b/1"] {
            storage
                .put_bytes(key, Bytes::from_static(b"blob"))
                .await
                .unwrap();
        }
        let keys: Vec<String> = storage
            .list_all("a")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(keys, ["a/1", "a/2"]);
    }
}

mod elasticsearch {
    use elasticsearch::http::transport::Transport;
    use elasticsearch::indices::{IndicesCreateParts, IndicesDeleteParts, IndicesExistsParts};
    use elasticsearch::params::Refresh;
    use elasticsearch::snapshot::{
        SnapshotCreateParts, SnapshotCreateRepositoryParts, SnapshotRestoreParts,
    };
    use elasticsearch::{CountParts, Elasticsearch, IndexParts, SearchParts};
    use serde_json::{Value, json};

    async fn ok(
        response: Result<elasticsearch::http::response::Response, elasticsearch::Error>,
    ) -> Value {
        let response = response.expect("request sent");
        let status = response.status_code();
        let body: Value = response.json().await.expect("JSON body");
        assert!(status.is_success(), "HTTP {status}: {body}");
        body
    }

    #[tokio::test]
    async fn index_search_snapshot_delete_restore_count() {
        let server = backup_testing::elasticsearch();
        let client = Elasticsearch::new(Transport::single_node(&server.url).unwrap());
        let index = backup_testing::unique_name("sts-smoke");
        let repo = backup_testing::unique_name("repo");

        ok(client
            .indices()
            .create(IndicesCreateParts::Index(&index))
            .body(json!({"settings": {"number_of_replicas": 0}}))
            .send()
            .await)
        .await;
        for n in 0..5 {
            let doc = json!({"n": n, "msg": format!("topology event {n}")});
            ok(client
                .index(IndexParts::Index(&index))
                .body(doc)
                .refresh(Refresh::True)
                .send()
                .await)
            .await;
        }
        let hits = ok(client
            .search(SearchParts::Index(&[&index]))
            .body(json!({"query": {"match": {"msg": "event"}}}))
            .send()
            .await)
        .await;
        assert_eq!(hits["hits"]["total"]["value"], 5);

        let location = server.repo_path.join(&repo);
        let settings = json!({"type": "fs", "settings": {"location": location}});
        ok(client
            .snapshot()
            .create_repository(SnapshotCreateRepositoryParts::Repository(&repo))
            .body(settings)
            .send()
            .await)
        .await;
        let snapshot = ok(client
            .snapshot()
            .create(SnapshotCreateParts::RepositorySnapshot(&repo, "snap-1"))
            .body(json!({"indices": index}))
            .wait_for_completion(true)
            .send()
            .await)
        .await;
        assert_eq!(snapshot["snapshot"]["state"], "SUCCESS", "{snapshot}");

        ok(client
            .indices()
            .delete(IndicesDeleteParts::Index(&[&index]))
            .send()
            .await)
        .await;
        let exists = client
            .indices()
            .exists(IndicesExistsParts::Index(&[&index]))
            .send()
            .await
            .unwrap();
        assert_eq!(exists.status_code().as_u16(), 404);

        ok(client
            .snapshot()
            .restore(SnapshotRestoreParts::RepositorySnapshot(&repo, "snap-1"))
            .body(json!({"indices": index}))
            .wait_for_completion(true)
            .send()
            .await)
        .await;
        let count = ok(client.count(CountParts::Index(&[&index])).send().await).await;
        assert_eq!(count["count"], 5);
    }
}
