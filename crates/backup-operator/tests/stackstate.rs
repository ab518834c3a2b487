//! The operator backing up a simulated StackState installation (kwok nodes run its Jobs and
//! forward its Elasticsearch to the test environment's) on schedule: a BackupConfiguration
//! with the `stackgraph-backup`, `settings-backup` and `elasticsearch-snapshot` tasks makes,
//! every minute, a session whose Job runs StackGraph's sts-backup-compatible backup Job in
//! the installation's namespace, runs the installation's own settings backup CronJob now
//! (its Job really runs on the real node and uploads an archive to MinIO) and takes an
//! Elasticsearch snapshot, and the Snapshot object records all three.

mod common;

use backup_testing::{RealNode, TestNamespace, kubeconfig, real_node, s3, unique_name};
use common::{
    Operator, Search, backup_configuration, ended, install_definitions, items, object,
    scheduled_run, scratch_volumes, storage,
};
use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};

#[test]
fn a_stackstate_configuration_runs_the_sts_backup_job_and_an_es_snapshot_on_schedule() {
    let node = real_node();
    install_definitions();
    let ns = TestNamespace::create("kbackup-sts");
    let bucket = unique_name("operator-sts");
    s3().create_bucket(&bucket);
    let settings_bucket = unique_name("operator-sts-settings");
    s3().create_bucket(&settings_bucket);
    let volumes = scratch_volumes(&ns, 3);
    let search = elasticsearch(&ns.name);
    ns.apply(&installation(&ns, &node, &bucket, &settings_bucket));
    ns.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deployment/elasticsearch",
        "--timeout=60s",
    ]);
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

    let scheduled = scheduled_run(&ns, "graph-every-minute");
    let status = ended(&ns, &scheduled);
    assert_eq!(status["phase"], "Succeeded", "{status}");
    // The policy deletes no StackState backup, and says so.
    let retention = &status["retentionPolicies"][0];
    assert_eq!(retention["phase"], "NotApplied", "{status}");
    assert!(
        retention["message"]
            .as_str()
            .unwrap()
            .contains("own expiry"),
        "{status}"
    );
    let snapshot = object(&ns, "snapshot", &format!("{scheduled}-archives"));
    let written = snapshot["spec"]["snapshotId"].as_str().unwrap().to_owned();
    let [archive, settings, es_snapshot] = written.split(',').collect::<Vec<_>>()[..] else {
        panic!("three names: {snapshot}")
    };
    assert!(
        archive.starts_with("sts-backup-") && archive.ends_with(".graph") && archive.len() == 30,
        "named as the chart's CronJob names them: {snapshot}"
    );
    assert_eq!(
        settings, SETTINGS_ARCHIVE,
        "the archive its Job wrote: {snapshot}"
    );
    assert_eq!(
        s3().keys(&settings_bucket, ""),
        vec![SETTINGS_ARCHIVE.to_owned()],
        "written by the installation's own Job"
    );
    for component in ["stackgraph", "settings", "elasticsearch"] {
        assert_eq!(
            snapshot["status"]["components"][component]["phase"], "Succeeded",
            "{snapshot}"
        );
    }
    let repository = object(&ns, "repository", "archives");
    assert!(
        repository["status"]["phase"].is_null(),
        "not Ready: the session never opened it: {repository}"
    );
    let taken = search.get(&format!("_snapshot/{}/{es_snapshot}", ns.name));
    assert_eq!(taken["snapshots"][0]["state"], "SUCCESS", "{taken}");
    assert!(
        taken["snapshots"][0]["indices"]
            .to_string()
            .contains(&format!("{}-data", ns.name)),
        "the configured indices: {taken}"
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

/// A snapshot repository named `prefix` (a directory of the test Elasticsearch) and an
/// index `<prefix>-data` with a document in it.
fn elasticsearch(prefix: &str) -> Search {
    let server = backup_testing::elasticsearch();
    let search = Search::new();
    let location = server.repo_path.join(prefix);
    let settings = serde_json::json!({"type": "fs", "settings": {"location": location}});
    let made = search.call("PUT", &format!("_snapshot/{prefix}"), &settings.to_string());
    assert_eq!(made["acknowledged"], true, "{made}");
    let indexed = search.call(
        "PUT",
        &format!("{prefix}-data/_doc/1?refresh=true"),
        r#"{"kept": true}"#,
    );
    assert!(indexed["result"].is_string(), "{indexed}");
    search
}

/// What the test's settings backup CronJob writes (the chart's names its archives by the
/// time; this one has no shell to ask the time).
const SETTINGS_ARCHIVE: &str = "sts-backup-20261201-0400.sty";

/// The installation's backup configuration (as the chart makes it) with the test MinIO's
/// keys, its settings backup CronJob (suspended, as if its time had not come: a Job of it
/// uploads an archive into `settings_bucket` from the real node), a storage on the test MinIO
/// for the configuration's repository, and a configuration backing up StackGraph, the
/// settings and Elasticsearch every minute.
fn installation(
    ns: &TestNamespace,
    node: &RealNode,
    bucket: &str,
    settings_bucket: &str,
) -> String {
    let minio = s3();
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
settings: {{bucket: {settings_bucket}}}
elasticsearch:
  service: {{name: suse-observability-elasticsearch-master-headless, port: 9200}}
  snapshotRepository: {{name: {class}}}
  slm: {{indices: '{class}-*'}}
",
        class = ns.name
    );
    backup_configuration(&config)
        + &format!(
            "apiVersion: v1
kind: Secret
metadata: {{name: settings-backup-keys}}
stringData: {{AWS_ACCESS_KEY_ID: {access_key}, AWS_SECRET_ACCESS_KEY: {secret_key}}}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: suse-observability-backup-conf
  labels: {{app.kubernetes.io/name: suse-observability, app.kubernetes.io/component: backup-settings}}
spec:
  schedule: '0 4 * * *'
  suspend: true
  concurrencyPolicy: Forbid
  jobTemplate:
    metadata: {{labels: {{app.kubernetes.io/component: backup}}}}
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
{placement}          containers:
          - name: backup-settings
            image: {image}
            imagePullPolicy: Never
            args: [storage, cp, /etc/ssl/certs/ca-certificates.crt, 's3://{settings_bucket}/{SETTINGS_ARCHIVE}']
            envFrom: [{{secretRef: {{name: settings-backup-keys}}}}]
            env: [{{name: KBACKUP_STORAGE_ENDPOINT, value: '{pod_endpoint}'}}, {{name: AWS_REGION, value: {region}}}]
---
{storage}apiVersion: kbackup.io/v1alpha1
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
    tasks:
    - {{name: stackgraph-backup}}
    - {{name: settings-backup, params: {{storageEndpoint: '{shared_endpoint}'}}}}
    - {{name: elasticsearch-snapshot}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: elasticsearch}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: elasticsearch}}}}
  template:
    metadata: {{labels: {{app: elasticsearch}}}}
    spec:
      containers: [{{name: es, image: elasticsearch, ports: [{{containerPort: 9200}}]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: suse-observability-elasticsearch-master-headless}}
spec:
  selector: {{app: elasticsearch}}
  ports: [{{port: 9200, targetPort: 9200}}]
",
        storage = storage(&node.shared_s3_endpoint, bucket),
        namespace = ns.name,
        access_key = minio.access_key_id,
        secret_key = minio.secret_access_key,
        region = minio.region,
        placement = backup_testing::indent(&node.placement(), 8),
        image = node.kbackup_image,
        pod_endpoint = node.pod_s3_endpoint,
        shared_endpoint = node.shared_s3_endpoint,
    )
}
