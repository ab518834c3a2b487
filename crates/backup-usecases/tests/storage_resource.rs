//! A BackupStorage's status from a real probe: the test MinIO, its credentials in a Secret
//! of the test API server.

use backup_api::{BackupStorageSpec, ConditionStatus, S3Backend, StoragePhase};
use backup_core::cluster::{ObjectRef, ResourceStore};
use backup_k8s::{ConnectOptions, KubeCluster};
use backup_usecases::storage_resource::{REACHABLE, storage_status};
use serde_json::json;

fn spec(s3: &backup_testing::S3Server, bucket: &str, secret: &str) -> BackupStorageSpec {
    BackupStorageSpec::s3(S3Backend {
        endpoint: Some(s3.endpoint.clone()),
        bucket: bucket.into(),
        region: Some(s3.region.clone()),
        prefix: Some(backup_testing::unique_name("storage-status")),
        secret_name: secret.into(),
    })
}

#[tokio::test]
async fn a_storage_is_ready_with_its_credentials_and_says_why_not_without() {
    let s3 = backup_testing::s3();
    let cluster = KubeCluster::connect(&ConnectOptions {
        kubeconfig: Some(backup_testing::kubeconfig()),
        context: None,
    })
    .await
    .unwrap();
    let namespace = backup_testing::unique_name("kbackup-storage");
    let secret = |name: &str, key: &str| {
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "stringData": {"AWS_ACCESS_KEY_ID": s3.access_key_id, "AWS_SECRET_ACCESS_KEY": key}})
    };
    cluster
        .apply(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
            false,
        )
        .await
        .unwrap();
    let wrong_key = "not-the-key-of-the-test-minio";
    for object in [
        secret("good", &s3.secret_access_key),
        secret("wrong", wrong_key),
    ] {
        cluster.apply(&object, false).await.unwrap();
    }

    let ready = storage_status(&cluster, &namespace, &spec(&s3, &s3.bucket, "good")).await;
    assert_eq!(ready.phase, Some(StoragePhase::Ready), "{ready:?}");
    assert_eq!(ready.conditions[0].type_, REACHABLE);
    assert_eq!(ready.conditions[0].status, ConditionStatus::True);

    for (spec, reason) in [
        (spec(&s3, &s3.bucket, "wrong"), "WriteFailed"),
        (spec(&s3, &s3.bucket, "absent"), "SecretNotFound"),
        (spec(&s3, "kbackup-no-such-bucket", "good"), "WriteFailed"),
    ] {
        let status = storage_status(&cluster, &namespace, &spec).await;
        assert_eq!(status.phase, Some(StoragePhase::NotReady), "{status:?}");
        let condition = &status.conditions[0];
        assert_eq!(
            (condition.status, condition.reason.as_str()),
            (ConditionStatus::False, reason),
            "{condition:?}"
        );
        assert!(!condition.message.is_empty());
        for secret in [wrong_key, s3.secret_access_key.as_str()] {
            assert!(!condition.message.contains(secret), "{condition:?}");
        }
    }

    cluster
        .delete(&ObjectRef {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: namespace.clone(),
        })
        .await
        .unwrap();
}
