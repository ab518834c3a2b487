//! What the operator's tests share: the definitions installed, the declarations of a
//! storage on the test MinIO and a configuration, waits and reads through kubectl.
#![allow(dead_code)]

use backup_testing::{RealNode, TestNamespace, indent, kubeconfig, s3};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(180);

/// The operator, as a process on this machine watching one namespace; killed when dropped.
pub struct Operator {
    child: Child,
    /// Where its metrics are served.
    pub metrics: String,
}

impl Operator {
    pub fn start(namespace: &str, node: &RealNode) -> Self {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let child = Command::new(env!("CARGO_BIN_EXE_kbackup-operator"))
            .args([
                "--image",
                &node.kbackup_image,
                "--metrics-address",
                &format!("127.0.0.1:{port}"),
                "--lease-namespace",
                namespace,
                "--watch-namespaces",
                namespace,
                "--job-node-selector",
                &format!("kubernetes.io/hostname={}", node.name),
                "--job-toleration",
                &node.taint,
                "--log-level",
                "info,kube=warn",
            ])
            .env("KUBECONFIG", kubeconfig())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting kbackup-operator");
        let operator = Self {
            child,
            metrics: format!("http://127.0.0.1:{port}"),
        };
        wait_for("the operator to be ready", WAIT, || {
            (operator.get("/readyz").as_deref() == Some("ready\n")).then_some(())
        });
        operator
    }

    /// The body of a GET, `None` when it does not answer 200.
    pub fn get(&self, path: &str) -> Option<String> {
        let output = Command::new("curl")
            .args(["-sf", &format!("{}{path}", self.metrics)])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn object(ns: &TestNamespace, kind: &str, name: &str) -> Value {
    serde_json::from_str(&ns.kubectl(&["get", kind, name, "-o", "json"])).unwrap()
}

pub fn items(ns: &TestNamespace, kind: &str) -> Vec<Value> {
    let list: Value = serde_json::from_str(&ns.kubectl(&["get", kind, "-o", "json"])).unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Creates a BackupSession of `configuration` now, as `kbackup trigger` does.
pub fn trigger(ns: &TestNamespace, configuration: &str, name: &str) {
    ns.apply(&format!(
        "apiVersion: kbackup.io/v1alpha1
kind: BackupSession
metadata: {{name: {name}}}
spec: {{invoker: {{name: {configuration}}}, session: every-minute}}
"
    ));
}

/// Waits until no session of `configuration` is pending or running.
pub fn wait_idle(ns: &TestNamespace, configuration: &str) {
    wait_for(
        &format!("the sessions of {configuration} to end"),
        WAIT,
        || {
            let busy = items(ns, "backupsessions").into_iter().any(|s| {
                s["spec"]["invoker"]["name"] == configuration
                    && matches!(
                        s["status"]["phase"].as_str(),
                        None | Some("Pending" | "Running")
                    )
            });
            (!busy).then_some(())
        },
    );
}

/// Triggers a session of `configuration` once none of its sessions is pending or running,
/// and again under a new name when its schedule started one in between (under `Forbid` the
/// later is skipped, rightly): the name of the session that started, once it left Pending.
pub fn trigger_when_idle(ns: &TestNamespace, configuration: &str, name: &str) -> String {
    for attempt in 0..5 {
        let name = match attempt {
            0 => name.to_owned(),
            n => format!("{name}-{n}"),
        };
        wait_idle(ns, configuration);
        trigger(ns, configuration, &name);
        let status = wait_for(&format!("session {name} to start"), WAIT, || {
            let status = object(ns, "backupsession", &name)["status"].clone();
            (!matches!(status["phase"].as_str(), None | Some("Pending"))).then_some(status)
        });
        let overtaken = status["phase"] == "Skipped"
            && status["conditions"][0]["reason"] == "AnotherSessionRunning";
        if !overtaken {
            return name;
        }
    }
    panic!("the schedule of {configuration} overtook every session triggered")
}

/// Waits until the session ended; its status.
pub fn ended(ns: &TestNamespace, name: &str) -> Value {
    wait_for(&format!("session {name} to end"), WAIT, || {
        let status = object(ns, "backupsession", name)["status"].clone();
        matches!(
            status["phase"].as_str(),
            Some("Succeeded" | "Failed" | "Skipped")
        )
        .then_some(status)
    })
}

pub fn install_definitions() {
    let mut apply = Command::new(backup_testing::kubectl())
        .args(["apply", "--server-side", "--force-conflicts", "-f", "-"])
        .env("KUBECONFIG", kubeconfig())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    apply
        .stdin
        .take()
        .unwrap()
        .write_all(backup_api::crds_yaml().unwrap().as_bytes())
        .unwrap();
    assert!(apply.wait().unwrap().success());
    let waited = Command::new(backup_testing::kubectl())
        .args([
            "wait",
            "--for=condition=Established",
            "crd/backupsessions.kbackup.io",
            "crd/snapshots.kbackup.io",
            "--timeout=60s",
        ])
        .env("KUBECONFIG", kubeconfig())
        .output()
        .unwrap();
    assert!(waited.status.success());
}

/// The storage `minio` on the test MinIO (reached at `endpoint`) with its keys' Secret, and
/// the Secret `repository-password`.
pub fn storage(endpoint: &str, bucket: &str) -> String {
    let server = s3();
    format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: minio-keys}}
stringData: {{AWS_ACCESS_KEY_ID: {key}, AWS_SECRET_ACCESS_KEY: {secret}}}
---
{PASSWORD}apiVersion: kbackup.io/v1alpha1
kind: BackupStorage
metadata: {{name: minio}}
spec:
  storage: {{provider: s3, s3: {{endpoint: '{endpoint}', region: {region}, bucket: {bucket}, secretName: minio-keys}}}}
---
",
        key = server.access_key_id,
        secret = server.secret_access_key,
        region = server.region,
    )
}

/// The Secret `repository-password` of the repositories.
pub const PASSWORD: &str = "apiVersion: v1
kind: Secret
metadata: {name: repository-password}
stringData: {password: operator-test-password}
---
";

/// The RetentionPolicy `keep-3`.
pub const KEEP_3: &str = "apiVersion: kbackup.io/v1alpha1
kind: RetentionPolicy
metadata: {name: keep-3}
spec: {successfulSnapshots: {last: 3}}
---
";

/// The Deployment `web` on the real node, its data in the claim `web-data` (made with it),
/// ready once it wrote a file there.
pub fn web_workload(node: &RealNode) -> String {
    format!(
        "{claim}apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
{placement}      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {toolbox}
        command: [sh, -c, 'echo kept > /data/file && touch /data/ready && exec sleep 1000000']
        readinessProbe: {{exec: {{command: [test, -f, /data/ready]}}, periodSeconds: 1}}
        volumeMounts: [{{name: data, mountPath: /data}}]
      volumes: [{{name: data, persistentVolumeClaim: {{claimName: web-data}}}}]
---
",
        claim = node.claim("web-data"),
        placement = indent(&node.placement(), 4),
        toolbox = node.toolbox_image,
    )
}

/// Waits for a session made by the CronJob of `cron_job` that ran (one that found another
/// session running was skipped, rightly: the next one is awaited); its name.
pub fn scheduled_run(ns: &TestNamespace, cron_job: &str) -> String {
    let prefix = format!("{cron_job}-");
    wait_for(
        "a session from the CronJob to run",
        Duration::from_secs(150),
        || {
            items(ns, "backupsessions").into_iter().find_map(|s| {
                let name = s["metadata"]["name"].as_str()?.to_owned();
                let ran = matches!(
                    s["status"]["phase"].as_str(),
                    Some("Running" | "Succeeded" | "Failed")
                );
                (name.starts_with(&prefix) && ran).then_some(name)
            })
        },
    )
}

/// The storage `minio`, a storage with a wrong key, a policy keeping 3, and a configuration
/// backing up the namespace's manifests and volumes every minute.
pub fn declarations(ns: &TestNamespace, node: &RealNode, bucket: &str) -> String {
    let server = s3();
    format!(
        "{storage}apiVersion: v1
kind: Secret
metadata: {{name: wrong-keys}}
stringData: {{AWS_ACCESS_KEY_ID: {key}, AWS_SECRET_ACCESS_KEY: not-the-key}}
---
apiVersion: kbackup.io/v1alpha1
kind: BackupStorage
metadata: {{name: minio-wrong-key}}
spec:
  storage: {{provider: s3, s3: {{endpoint: '{endpoint}', region: {region}, bucket: {bucket}, prefix: never, secretName: wrong-keys}}}}
---
{KEEP_3}{configuration}---
{bad}---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{colour: blue}}
---
{web}",
        storage = storage(&node.shared_s3_endpoint, bucket),
        key = server.access_key_id,
        endpoint = node.shared_s3_endpoint,
        region = server.region,
        configuration = configuration(ns, "web", "minio", "apps", true),
        bad = configuration(ns, "unwritable", "minio-wrong-key", "unwritable", false),
        web = web_workload(node),
    )
}

pub fn configuration(
    ns: &TestNamespace,
    name: &str,
    storage: &str,
    repository: &str,
    volumes: bool,
) -> String {
    let volume_task = if volumes {
        "\n    - {name: volume-backup}"
    } else {
        ""
    };
    format!(
        "apiVersion: kbackup.io/v1alpha1
kind: BackupConfiguration
metadata: {{name: {name}}}
spec:
  target: {{kind: Namespace, name: {namespace}}}
  backends: [{{name: main, storageRef: {{name: {storage}}}, retentionPolicy: {{name: keep-3}}}}]
  sessions:
  - name: every-minute
    scheduler: {{schedule: '* * * * *'}}
    sessionHistoryLimit: 10
    timeout: 5m
    repositories: [{{name: {repository}, backend: main, directory: {repository}, encryptionSecret: {{name: repository-password}}}}]
    tasks:
    - {{name: manifest-backup}}{volume_task}
",
        namespace = ns.name,
    )
}

/// Sets `deletionPolicy: WipeOut`, waits for the operator's finalizer, deletes the object and
/// waits until it is gone.
pub fn wipe_out(ns: &TestNamespace, kind: &str, name: &str) {
    ns.kubectl(&[
        "patch",
        kind,
        name,
        "--type=merge",
        "-p",
        r#"{"spec":{"deletionPolicy":"WipeOut"}}"#,
    ]);
    wait_for(&format!("{kind} {name} to be held"), WAIT, || {
        let finalizers = object(ns, kind, name)["metadata"]["finalizers"].to_string();
        finalizers.contains("kbackup.io/wipe-out").then_some(())
    });
    ns.kubectl(&["delete", kind, name, "--timeout=180s"]);
}

/// Once the Deployment `web` is available, a session of the configuration `web` on demand
/// (`name`, or a later one when the schedule overtook it) that succeeds with a Snapshot of
/// both components, the manifests and the volume: the session's name and its Snapshot.
pub fn web_backed_up(ns: &TestNamespace, name: &str) -> (String, Value) {
    ns.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=120s",
    ]);
    let session = trigger_when_idle(ns, "web", name);
    let status = ended(ns, &session);
    assert_eq!(status["phase"], "Succeeded", "{status}");
    let snapshot = object(ns, "snapshot", &format!("{session}-apps"));
    assert_eq!(snapshot["status"]["phase"], "Succeeded", "{snapshot}");
    let components = snapshot["status"]["components"].as_object().unwrap();
    assert!(components.contains_key("manifests"), "{snapshot}");
    assert!(
        components.keys().any(|c| c.contains("web-data")),
        "a volume component: {snapshot}"
    );
    (session, snapshot)
}

/// Sets `paused: true` on the configuration.
pub fn pause(ns: &TestNamespace, configuration: &str) {
    ns.kubectl(&[
        "patch",
        "backupconfiguration",
        configuration,
        "--type=merge",
        "-p",
        r#"{"spec":{"paused":true}}"#,
    ]);
}

/// Waits until the RestoreSession `name` ended (Succeeded, Failed, Invalid or Unknown); its
/// status.
pub fn restore_ended(ns: &TestNamespace, name: &str) -> Value {
    wait_for(&format!("restore {name} to end"), WAIT, || {
        let status = object(ns, "restoresession", name)["status"].clone();
        matches!(
            status["phase"].as_str(),
            Some("Succeeded" | "Failed" | "Invalid" | "Unknown")
        )
        .then_some(status)
    })
}

/// `count` volumes for the scratch claims of a StackState installation's Jobs in `ns`
/// (their class is the namespace's name); their names.
pub fn scratch_volumes(ns: &TestNamespace, count: usize) -> Vec<String> {
    let names: Vec<String> = (0..count).map(|n| format!("{}-pv-{n}", ns.name)).collect();
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

/// The test Elasticsearch, reached by curl.
pub struct Search {
    /// Its URL.
    pub url: String,
}

impl Search {
    /// The test environment's.
    pub fn new() -> Self {
        Self {
            url: backup_testing::elasticsearch().url,
        }
    }

    /// The JSON answer of a call (null when it is not JSON).
    pub fn call(&self, method: &str, path: &str, body: &str) -> Value {
        let output = Command::new("curl")
            .args(["-sS", "-X", method, "-H", "content-type: application/json"])
            .args(["--data", body, &format!("{}/{path}", self.url)])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
    }

    /// The JSON answer of a GET.
    pub fn get(&self, path: &str) -> Value {
        self.call("GET", path, "")
    }

    /// The documents of `index`, once refreshed.
    pub fn count(&self, index: &str) -> u64 {
        self.call("POST", &format!("{index}/_refresh"), "");
        let counted = self.get(&format!("{index}/_count"));
        counted["count"]
            .as_u64()
            .unwrap_or_else(|| panic!("{counted}"))
    }
}

/// A StackState installation's backup configuration as its chart makes it: the ConfigMap
/// holding `config` (YAML) and the Secret holding the test MinIO's keys.
pub fn backup_configuration(config: &str) -> String {
    let minio = s3();
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
    minio: {{accessKey: {access_key}, secretKey: {secret_key}}}
---
",
        config = indent(config, 4),
        access_key = minio.access_key_id,
        secret_key = minio.secret_access_key,
    )
}

/// A Deployment `name` of `replicas` labelled `label: 'true'` (what a restore scales down).
pub fn scaled_deployment(name: &str, label: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, labels: {{{label}: 'true'}}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: {name}, image: {name}}}]
"
    )
}
