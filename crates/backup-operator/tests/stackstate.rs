//! The operator backing up a simulated StackState installation (kwok nodes run its Jobs) on
//! schedule: a BackupConfiguration with the `stackgraph-backup` task makes, every minute, a
//! session whose Job runs StackGraph's sts-backup-compatible backup Job in the installation's
//! namespace, and the Snapshot object records the archive it wrote.

mod common;

use backup_testing::{TestNamespace, kubeconfig, real_node, s3, unique_name};
use common::{Operator, ended, install_definitions, items, object, wait_for};
use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn a_stackgraph_configuration_runs_the_sts_backup_job_on_schedule() {
    let node = real_node();
    install_definitions();
    let ns = TestNamespace::create("kbackup-sts");
    let bucket = unique_name("operator-sts");
    s3().create_bucket(&bucket);
    let volumes = scratch_volumes(&ns);
    ns.apply(&installation(&ns, &node.shared_s3_endpoint, &bucket));
    // Every Job made in the namespace, as the API server announces it (the backup Job is
    // removed once it ended, as sts-backup removes it).
    let mut watch = Command::new(backup_testing::kubectl())
        .args([
            "get",
            "jobs",
            "--namespace",
            &ns.name,
            "--watch",
            "-o",
            "json",
        ])
        .env("KUBECONFIG", kubeconfig())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let _operator = Operator::start(&ns.name, &node);

    let scheduled = wait_for(
        "a session from the CronJob to run",
        Duration::from_secs(150),
        || {
            items(&ns, "backupsessions").into_iter().find_map(|s| {
                let name = s["metadata"]["name"].as_str()?.to_owned();
                let ran = matches!(
                    s["status"]["phase"].as_str(),
                    Some("Running" | "Succeeded" | "Failed")
                );
                (name.starts_with("graph-every-minute-") && ran).then_some(name)
            })
        },
    );
    let status = ended(&ns, &scheduled);
    assert_eq!(status["phase"], "Succeeded", "{status}");
    let snapshot = object(&ns, "snapshot", &format!("{scheduled}-archives"));
    let archive = snapshot["spec"]["snapshotId"].as_str().unwrap().to_owned();
    assert!(
        archive.starts_with("sts-backup-") && archive.ends_with(".graph") && archive.len() == 30,
        "named as the chart's CronJob names them: {snapshot}"
    );
    assert_eq!(
        snapshot["status"]["components"]["stackgraph"]["phase"], "Succeeded",
        "{snapshot}"
    );

    let _ = watch.kill();
    let mut seen = String::new();
    watch
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut seen)
        .unwrap();
    let _ = watch.wait();
    let jobs: Vec<Value> = serde_json::Deserializer::from_str(&seen)
        .into_iter::<Value>()
        .filter_map(Result::ok)
        .collect();
    let backup = jobs
        .iter()
        .find(|j| {
            j["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("stackgraph-backup-"))
        })
        .unwrap_or_else(|| panic!("no StackGraph backup Job among {} seen", jobs.len()));
    let pod = &backup["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"], "quay.io/stackstate/stackstate-backup-container:test",
        "the installation's backup image: {backup}"
    );
    assert!(
        container.to_string().contains("backup-stackgraph.sh")
            && container
                .to_string()
                .contains("BACKUP_STACKGRAPH_BUCKET_NAME")
            && container.to_string().contains("/aws-keys"),
        "sts-backup's contract: {backup}"
    );
    assert_eq!(
        backup["metadata"]["labels"]["app.kubernetes.io/component"],
        "stackgraph-backup-restore"
    );
    // The session's own Job ran on the real node; the data store's on a kwok node.
    let session_job = jobs
        .iter()
        .find(|j| j["metadata"]["name"].as_str() == Some(&format!("{scheduled}-archives")))
        .expect("the session's Job");
    assert_eq!(
        session_job["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/hostname"],
        node.name.as_str()
    );
    assert!(
        items(&ns, "jobs").iter().all(|j| !j["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("stackgraph-backup-")
            || j["status"]["active"].as_i64().unwrap_or(0) > 0),
        "a finished backup Job is removed"
    );
    for volume in volumes {
        let _ = Command::new(backup_testing::kubectl())
            .args(["delete", "pv", &volume, "--wait=false"])
            .env("KUBECONFIG", kubeconfig())
            .output();
    }
}

/// Volumes for the backup Jobs' scratch claims (their class is the namespace's name).
fn scratch_volumes(ns: &TestNamespace) -> Vec<String> {
    let names: Vec<String> = (0..3).map(|n| format!("{}-pv-{n}", ns.name)).collect();
    for name in &names {
        ns.apply(&format!(
            "apiVersion: v1
kind: PersistentVolume
metadata: {{name: {name}}}
spec:
  capacity: {{storage: 5Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: {class}
  hostPath: {{path: /tmp/kbackup-sts-scratch}}
",
            class = ns.name
        ));
    }
    names
}

/// The installation's backup configuration (as the chart makes it), a storage on the test
/// MinIO for the configuration's repository, and a configuration backing up StackGraph every
/// minute.
fn installation(ns: &TestNamespace, endpoint: &str, bucket: &str) -> String {
    let server = s3();
    let config = format!(
        "minio: {{service: {{name: suse-observability-minio, port: 9000}}}}
stackgraph:
  bucket: sts-stackgraph-backup
  s3Prefix: ''
  restore:
    scaleDownLabelSelector: observability.suse.com/scalable-during-stackgraph-restore=true
    zookeeperQuorum: suse-observability-zookeeper:2181
    job: {{image: 'quay.io/stackstate/stackstate-backup-container:test', waitImage: busybox}}
    pvc: {{size: 1Gi, storageClassName: {class}}}
",
        class = ns.name
    );
    format!(
        "apiVersion: v1
kind: ConfigMap
metadata: {{name: suse-observability-backup-config}}
data:
  config: |
{config}---
apiVersion: v1
kind: Secret
metadata: {{name: suse-observability-backup-config}}
stringData:
  config: |
    minio: {{accessKey: sts-key, secretKey: sts-secret}}
---
apiVersion: v1
kind: Secret
metadata: {{name: minio-keys}}
stringData: {{AWS_ACCESS_KEY_ID: {key}, AWS_SECRET_ACCESS_KEY: {secret}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: repository-password}}
stringData: {{password: operator-test-password}}
---
apiVersion: kbackup.io/v1alpha1
kind: BackupStorage
metadata: {{name: minio}}
spec:
  storage: {{provider: s3, s3: {{endpoint: '{endpoint}', region: {region}, bucket: {bucket}, secretName: minio-keys}}}}
---
apiVersion: kbackup.io/v1alpha1
kind: RetentionPolicy
metadata: {{name: keep-30}}
spec: {{successfulSnapshots: {{last: 30}}}}
---
apiVersion: kbackup.io/v1alpha1
kind: BackupConfiguration
metadata: {{name: graph}}
spec:
  target: {{kind: Namespace, name: {namespace}}}
  backends: [{{name: main, storageRef: {{name: minio}}, retentionPolicy: {{name: keep-30}}}}]
  sessions:
  - name: every-minute
    scheduler: {{schedule: '* * * * *'}}
    timeout: 5m
    repositories: [{{name: archives, backend: main, directory: archives, encryptionSecret: {{name: repository-password}}}}]
    tasks: [{{name: stackgraph-backup}}]
",
        config = backup_testing::indent(&config, 4),
        key = server.access_key_id,
        secret = server.secret_access_key,
        region = server.region,
        namespace = ns.name,
    )
}
