//! A simulated StackState installation for the data store tests: the real control plane
//! with kwok nodes, the config objects, labelled workloads, a MinIO Service whose pod port
//! 9000 kwok forwards to the test MinIO, and archives in it.
#![allow(dead_code)] // each test binary uses part of the harness

pub mod local_repo;

use backup_core::cluster::{ObjectRef, ResourceStore, WorkloadControl};
use backup_core::workflow::{PRE_RESTORE_REPLICAS, RESTORE_IN_PROGRESS, RESTORE_STARTED_AT};
use backup_core::{ObjectStorageExt, RepositoryLocation};
use backup_k8s::{ConnectOptions, KubeCluster};
use backup_storage::{Secret, StorageOptions};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::{Value, json};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub const SELECTOR_LABEL: &str = "stackstate.com/connects-to-stackgraph";
pub const SETTINGS_LABEL: &str = "observability.suse.com/scalable-during-settings-restore";
pub const ES_LABEL: &str = "observability.suse.com/scalable-during-es-restore";
pub const VM_LABEL: &str = "observability.suse.com/scalable-during-vm-restore";
/// Volumes made per installation: two for Job scratch claims, two for VictoriaMetrics.
const VOLUMES: usize = 4;
pub const FAIL_LABEL: &str = "pod-container-running-failed.stage.kwok.x-k8s.io";

/// One simulated installation in its own namespace, with its own archive prefix.
pub struct Installation {
    pub cluster: KubeCluster,
    pub namespace: String,
    pub prefix: String,
    pub home: tempfile::TempDir,
}

pub async fn cluster() -> KubeCluster {
    KubeCluster::connect(&ConnectOptions {
        kubeconfig: Some(backup_testing::kubeconfig()),
        context: None,
    })
    .await
    .unwrap()
}

/// `storage_class`: the scratch claims' class (the installation's own volumes carry it).
fn config_yaml(
    prefix: &str,
    storage_class: &str,
    common_labels: Value,
    job_extra: Value,
) -> String {
    let mut job = json!({"image": "quay.io/stackstate/stackstate-backup-container:test", "waitImage": "busybox"});
    job.as_object_mut()
        .unwrap()
        .extend(job_extra.as_object().cloned().unwrap_or_default());
    let config = json!({
        "kubernetes": {"commonLabels": common_labels},
        "minio": {"service": {"name": "suse-observability-minio", "port": 9000}},
        "stackgraph": {
            "bucket": "sts-stackgraph-backup",
            "s3Prefix": prefix,
            "restore": {
                "scaleDownLabelSelector": format!("{SELECTOR_LABEL}=true"),
                "zookeeperQuorum": "suse-observability-zookeeper:2181",
                "job": job,
                "pvc": {"size": "1Gi", "storageClassName": storage_class}
            }
        },
        "settings": {
            "bucket": "sts-settings-backup",
            "s3Prefix": format!("{prefix}/"),
            "restore": {
                "scaleDownLabelSelector": format!("{SETTINGS_LABEL}=true"),
                "job": job,
            }
        },
        "elasticsearch": {
            "service": {"name": "suse-observability-elasticsearch-master-headless", "port": 9200},
            "snapshotRepository": {"name": prefix, "type": "fs",
                                   "location": format!("{}/{prefix}", backup_testing::elasticsearch().repo_path.display())},
            "slm": {"name": format!("{prefix}-slm"), "schedule": "0 0 3 * * ?", "snapshotTemplateName": format!("<{prefix}-{{now{{yyyyMMdd-HHmm}}}}>"),
                    "repository": prefix, "indices": format!("{prefix}*"), "retentionExpireAfter": "30d", "retentionMinCount": 5, "retentionMaxCount": 30},
            "restore": {"repository": prefix, "scaleDownLabelSelector": format!("{ES_LABEL}=true"), "indexPrefix": prefix,
                        "datastreamIndexPrefix": format!(".ds-{prefix}_logs"), "datastreamName": format!("{prefix}_logs"),
                        "indicesPattern": format!("{prefix}*,.ds-{prefix}_logs*")}
        },
        "victoriaMetrics": {
            "S3Locations": ([0, 1].map(|i| json!({"bucket": "sts-victoria-metrics-backup", "prefix": format!("{prefix}-victoria-metrics-{i}")}))),
            "restore": {
                "haMode": "mirror",
                "persistentVolumeClaimPrefix": "database-",
                "scaleDownLabelSelector": format!("{VM_LABEL}=true"),
                "job": job,
            }
        }
    });
    serde_saphyr::to_string(&config).unwrap()
}

pub fn deployment(ns: &str, name: &str, replicas: i32, labels: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns, "labels": labels},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "img", "ports": [{"containerPort": 9000}]}]}}}})
}

impl Installation {
    /// Sets everything up; `common_labels` go into `kubernetes.commonLabels`.
    pub async fn new(common_labels: Value) -> Self {
        Self::with_job(common_labels, json!({})).await
    }

    /// As `new`, with extra `stackgraph.restore.job` settings.
    pub async fn with_job(common_labels: Value, job_extra: Value) -> Self {
        let cluster = cluster().await;
        let namespace = backup_testing::unique_name("sts");
        let prefix = backup_testing::unique_name("sg");
        let apply = |object: Value| {
            let cluster = cluster.clone();
            async move { cluster.apply(&object, true).await.unwrap() }
        };
        apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}))
            .await;
        let server = backup_testing::s3();
        apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "suse-observability-backup-config", "namespace": namespace},
                     "data": {"config": config_yaml(&prefix, &namespace, common_labels, job_extra)}}))
        .await;
        let secret = format!(
            "minio:\n  accessKey: {}\n  secretKey: {}\n",
            server.access_key_id, server.secret_access_key
        );
        apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "suse-observability-backup-config", "namespace": namespace},
                     "stringData": {"config": secret}}))
        .await;
        apply(deployment(&namespace, "minio", 1, json!({}))).await;
        apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "suse-observability-minio", "namespace": namespace},
                     "spec": {"selector": {"app": "minio"}, "ports": [{"port": 9000, "targetPort": 9000}]}}))
        .await;
        apply(deployment(
            &namespace,
            "server",
            2,
            json!({SELECTOR_LABEL: "true"}),
        ))
        .await;
        apply(json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "receiver", "namespace": namespace, "labels": {SELECTOR_LABEL: "true"}},
                     "spec": {"replicas": 1, "serviceName": "receiver", "selector": {"matchLabels": {"app": "receiver"}},
                              "template": {"metadata": {"labels": {"app": "receiver"}}, "spec": {"containers": [{"name": "c", "image": "img"}]}}}}))
        .await;
        apply(deployment(&namespace, "ui", 1, json!({}))).await;
        apply(deployment(&namespace, "elasticsearch", 1, json!({}))).await;
        apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "suse-observability-elasticsearch-master-headless", "namespace": namespace},
                     "spec": {"selector": {"app": "elasticsearch"}, "ports": [{"port": 9200, "targetPort": 9200}]}}))
        .await;
        apply(deployment(
            &namespace,
            "es-writer",
            1,
            json!({ES_LABEL: "true"}),
        ))
        .await;
        apply(deployment(
            &namespace,
            "settings-api",
            1,
            json!({SETTINGS_LABEL: "true"}),
        ))
        .await;
        for i in 0..2 {
            let name = format!("victoria-metrics-{i}");
            apply(json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": namespace, "labels": {VM_LABEL: "true"}},
                         "spec": {"replicas": 1, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                                  "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "img"}]}}}}))
            .await;
            // The instance's data volume, as the StatefulSet's claim template makes it.
            apply(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": format!("database-{name}-0"), "namespace": namespace},
                         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": namespace, "resources": {"requests": {"storage": "1Gi"}}}}))
            .await;
        }
        let installation = Self {
            cluster,
            namespace,
            prefix,
            home: tempfile::tempdir().unwrap(),
        };
        installation.add_volumes().await;
        installation
            .wait_running(
                "app in (minio,server,receiver,ui,elasticsearch,es-writer,settings-api,victoria-metrics-0,victoria-metrics-1)",
                10,
            )
            .await;
        installation
    }

    /// Available volumes, as a provisioner would make them, for this installation's claims
    /// only: their storage class is the namespace's name, as is its claims' (the restore and
    /// backup Jobs claim a scratch volume named after themselves; the VictoriaMetrics
    /// instances claim theirs; 5Gi holds StackGraph v2's live restore claim, whatever the
    /// configuration says). Volumes are cluster-wide: with a class shared by all, a claim
    /// of a test running beside this one could take a volume that test then deletes.
    pub async fn add_volumes(&self) {
        for n in 0..VOLUMES {
            let volume = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": format!("{}-pv-{n}", self.namespace)},
                                "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": self.namespace,
                                         "persistentVolumeReclaimPolicy": "Delete", "hostPath": {"path": "/tmp/kbackup-restore"}}});
            self.cluster.apply(&volume, true).await.unwrap();
        }
    }

    /// Whether a Job's scratch volume or keys are still there. A claim being deleted counts
    /// as gone: `pvc-protection` holds it until the Job's pod is gone, which is asynchronous.
    pub async fn leftovers(&self, job: &str) -> bool {
        let claim = ObjectRef {
            api_version: "v1".into(),
            kind: "PersistentVolumeClaim".into(),
            namespace: Some(self.namespace.clone()),
            name: job.into(),
        };
        let claim_left = self
            .cluster
            .get(&claim)
            .await
            .unwrap()
            .is_some_and(|c| c["metadata"]["deletionTimestamp"].is_null());
        claim_left || self.exists("Secret", "v1", &format!("{job}-keys")).await
    }

    pub async fn wait_running(&self, selector: &str, count: usize) {
        let pods = backup_core::cluster::ApiResourceType {
            group: "".into(),
            version: "v1".into(),
            kind: "Pod".into(),
            plural: "pods".into(),
            namespaced: true,
            verbs: vec![],
        };
        for _ in 0..300 {
            let page = self
                .cluster
                .list_page(&pods, Some(&self.namespace), Some(selector), 100, None)
                .await
                .unwrap();
            if page
                .items
                .iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .count()
                == count
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("pods matching {selector} did not reach {count} Running");
    }

    /// Uploads objects of the given sizes below the installation's StackGraph prefix.
    pub async fn upload(&self, keys: Vec<(String, usize)>) {
        self.upload_to(&format!("sts-stackgraph-backup/{}", self.prefix), keys)
            .await;
    }

    /// Uploads objects of the given sizes below `bucket/prefix`.
    pub async fn upload_to(&self, bucket_and_prefix: &str, keys: Vec<(String, usize)>) {
        let server = backup_testing::s3();
        let options = StorageOptions {
            endpoint: Some(server.endpoint.clone()),
            access_key_id: Some(server.access_key_id.clone()),
            secret_access_key: Some(Secret::new(server.secret_access_key.clone())),
            ..StorageOptions::default()
        };
        let location = RepositoryLocation::parse(&format!("s3://{bucket_and_prefix}")).unwrap();
        let storage = backup_storage::open(&location, &options).await.unwrap();
        stream::iter(keys)
            .map(|(key, size)| {
                let storage = storage.clone();
                async move { storage.put_bytes(&key, Bytes::from(vec![7u8; size])).await }
            })
            .buffer_unordered(32)
            .try_collect::<Vec<_>>()
            .await
            .unwrap();
    }

    pub async fn upload_archives(&self) {
        self.upload(vec![
            ("sts-backup-20261119-0300.graph".into(), 1000),
            ("sts-backup-20261120-0300.graph".into(), 2000),
            ("sts-backup-20261121-0300.graph.00".into(), 3000),
            ("sts-backup-20261121-0300.graph.01".into(), 500),
        ])
        .await;
    }

    pub fn kbackup(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// The binary acting through `kubeconfig` (a ServiceAccount's, say).
    pub fn kbackup_as(&self, kubeconfig: &std::path::Path, args: &[&str]) -> Output {
        self.command_as(kubeconfig, args).output().unwrap()
    }

    /// The binary with a clean environment, pointed at this installation.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_as(&backup_testing::kubeconfig(), args)
    }

    /// The binary with a clean environment, pointed at this installation through
    /// `kubeconfig`.
    pub fn command_as(&self, kubeconfig: &std::path::Path, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kbackup"));
        for (name, _) in std::env::vars().filter(|(n, _)| {
            n.starts_with("AWS_") || n.starts_with("KBACKUP_") || n == "KUBECONFIG"
        }) {
            command.env_remove(name);
        }
        command
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--no-progress", "-n", &self.namespace])
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Replaces the configuration Secret's document (merged over the ConfigMap's).
    pub async fn set_secret_config(&self, config: &str) {
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "suse-observability-backup-config", "namespace": self.namespace},
            "stringData": {"config": config}});
        self.cluster.apply(&secret, true).await.unwrap();
    }

    /// Finishes a background restore of `data_store` (`check-and-finalize --wait`), which
    /// must succeed; its report.
    pub fn finalize(&self, data_store: &str, job: &str) -> String {
        let out = self.kbackup(&[data_store, "check-and-finalize", "--job", job, "--wait"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    }

    /// `kbackup -o json ARGS`, which must succeed, its output parsed.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.kbackup(&[&["-o", "json"], args].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The variables of a Job's first container, by name.
    pub async fn job_env(&self, job: &str) -> std::collections::BTreeMap<String, Value> {
        let manifest = self.object("Job", "batch/v1", job).await;
        manifest["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["name"].as_str().unwrap().to_owned(), e["value"].clone()))
            .collect()
    }

    pub async fn workload(&self, name: &str) -> backup_core::cluster::Workload {
        let all = self.cluster.workloads(&self.namespace, "").await.unwrap();
        all.into_iter().find(|w| w.name == name).unwrap()
    }

    pub async fn assert_running_as_before(&self) {
        for (name, replicas) in [("server", 2), ("receiver", 1), ("ui", 1)] {
            let w = self.workload(name).await;
            assert_eq!(w.replicas, replicas, "{name}");
            for key in [
                PRE_RESTORE_REPLICAS,
                RESTORE_IN_PROGRESS,
                RESTORE_STARTED_AT,
            ] {
                assert!(!w.annotations.contains_key(key), "{name} still has {key}");
            }
        }
    }

    /// An object of the installation's namespace, `None` when it is not there.
    pub async fn find(&self, kind: &str, api_version: &str, name: &str) -> Option<Value> {
        let object = ObjectRef::namespaced(api_version, kind, &self.namespace, name);
        self.cluster.get(&object).await.unwrap()
    }

    pub async fn exists(&self, kind: &str, api_version: &str, name: &str) -> bool {
        self.find(kind, api_version, name).await.is_some()
    }

    pub async fn object(&self, kind: &str, api_version: &str, name: &str) -> Value {
        let found = self.find(kind, api_version, name).await;
        found.unwrap_or_else(|| panic!("no {kind} {name} in {}", self.namespace))
    }

    pub async fn cleanup(self) {
        let volumes = (0..VOLUMES).map(|n| format!("{}-pv-{n}", self.namespace));
        let objects = std::iter::once(("Namespace", self.namespace.clone()))
            .chain(volumes.map(|name| ("PersistentVolume", name)));
        for (kind, name) in objects {
            let object = ObjectRef {
                api_version: "v1".into(),
                kind: kind.into(),
                namespace: None,
                name,
            };
            self.cluster.delete(&object).await.unwrap();
        }
    }
}

/// Asserts a command failed with exit 1 and said `needle` on stderr.
/// The test MinIO's keys as the configuration's `minio:` section.
pub fn minio_keys() -> String {
    let server = backup_testing::s3();
    format!(
        "minio:\n  accessKey: {}\n  secretKey: {}\n",
        server.access_key_id, server.secret_access_key
    )
}

pub fn assert_refused(out: &std::process::Output, needle: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(needle), "expected '{needle}' in: {stderr}");
}

/// The binary with a clean environment (no `KBACKUP_*` or `KUBECONFIG` from the caller),
/// `home` as its home, acting through `kubeconfig`, without progress bars.
pub fn clean_command(home: &std::path::Path, kubeconfig: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kbackup"));
    for (name, _) in
        std::env::vars().filter(|(n, _)| n.starts_with("KBACKUP_") || n == "KUBECONFIG")
    {
        command.env_remove(name);
    }
    command
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--no-progress")
        .stdin(Stdio::null());
    command
}

/// A reference to one object.
pub fn reference(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.map(str::to_owned),
        name: name.into(),
    }
}

/// Deletes the objects and waits until they are gone (a minute each at most).
pub async fn delete_and_wait(cluster: &KubeCluster, objects: &[ObjectRef]) {
    for object in objects {
        cluster.delete(object).await.unwrap();
    }
    for object in objects {
        for attempt in 0.. {
            if cluster.get(object).await.unwrap().is_none() {
                break;
            }
            assert!(attempt < 600, "{object} was not deleted");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// kubectl as the administrator, with `stdin`: what it printed and how it exited.
pub fn kubectl_output(args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(backup_testing::kubectl())
        .arg("--kubeconfig")
        .arg(backup_testing::kubeconfig())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(stdin) = stdin {
        input.write_all(stdin.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// kubectl as the administrator, with `stdin`; its output, or a panic on failure.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> String {
    let out = kubectl_output(args, stdin);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// kbackup's CustomResourceDefinitions applied (as the chart ships them) and every one of
/// them Established.
pub fn install_kbackup_definitions() {
    kubectl(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&backup_api::crds_yaml().unwrap()),
    );
    kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "crd",
            "-l",
            "app.kubernetes.io/part-of=kbackup",
            "--timeout=60s",
        ],
        None,
    );
}

/// Creates ServiceAccount `name` in `namespace` and writes a kubeconfig acting as it (the
/// administrator's, with the account's token) into `dir`.
pub fn service_account_kubeconfig(
    namespace: &str,
    name: &str,
    dir: &std::path::Path,
) -> std::path::PathBuf {
    kubectl(&["-n", namespace, "create", "serviceaccount", name], None);
    let token = kubectl(&["-n", namespace, "create", "token", name], None);
    let kubeconfig = dir.join(format!("{name}.kubeconfig"));
    std::fs::copy(backup_testing::kubeconfig(), &kubeconfig).unwrap();
    for args in [
        vec![
            "config".to_owned(),
            "set-credentials".into(),
            name.into(),
            format!("--token={}", token.trim()),
        ],
        vec![
            "config".into(),
            "set-context".into(),
            "--current".into(),
            format!("--user={name}"),
        ],
    ] {
        let out = Command::new(backup_testing::kubectl())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    kubeconfig
}

/// What `kbackup rbac COMMAND` prints for `account` of `namespace`, its names prefixed with
/// `unique` (ClusterRoles are cluster-wide), with the verb `drop` (when given) replaced by
/// `watch`, which none of the roles uses on those resources.
pub fn role_yaml(
    namespace: &str,
    account: &str,
    command: &str,
    unique: &str,
    drop: Option<&str>,
) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kbackup"))
        .args([
            "-n",
            namespace,
            "rbac",
            command,
            "--service-account",
            account,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut yaml = text(&out.stdout).replace("name: kbackup-", &format!("name: {unique}-"));
    if let Some(verb) = drop {
        yaml = yaml.replace(&format!("  - {verb}\n"), "  - watch\n");
    }
    yaml
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
