//! RestoreSessions with the operator, against the test environment's API server, real node
//! and MinIO: a namespace with a StatefulSet and its volumes backed up by the operator, the
//! StatefulSet and its claims deleted, then restored by a RestoreSession of `snapshot:
//! latest` and component `pod-0` only (pod 0 gets its data back, pod 1 starts empty), its
//! configuration's backups paused while it runs and resumed after, the operator killed and
//! started again meanwhile, its status checked field by field against seed 004's shape; the whole namespace restored into another one; and a
//! restore past its timeout failed with nothing left running.

mod common;

use backup_testing::{RealNode, TestNamespace, indent, real_node, s3, unique_name};
use common::{
    Operator, WAIT, install_definitions, items, object, restore_ended, storage, wait_for,
};
use serde_json::Value;
use std::process::Command;

/// The StatefulSet `db` of two pods on the real node, each writing a token of its own into
/// its claim the first time it starts, ready once the token is there.
fn statefulset(node: &RealNode) -> String {
    format!(
        "apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db}}
spec:
  replicas: 2
  serviceName: db
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
{placement}      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {toolbox}
        command: [sh, -c, 'test -f /data/token || head -c 16 /dev/urandom | od -An -tx1 | tr -d \" \\n\" > /data/token; exec sleep 1000000']
        readinessProbe: {{exec: {{command: [test, -s, /data/token]}}, periodSeconds: 1}}
        volumeMounts: [{{name: data, mountPath: /data}}]
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: {class}
      resources: {{requests: {{storage: 128Mi}}}}
---
",
        placement = indent(&node.placement(), 4),
        toolbox = node.toolbox_image,
        class = node.storage_class,
    )
}

/// A configuration `db` backing up the namespace's manifests and volumes into the repository
/// `apps`, on a schedule that does not come during the test (sessions are made on demand).
fn configuration(ns: &TestNamespace) -> String {
    format!(
        "apiVersion: kbackup.io/v1alpha1
kind: RetentionPolicy
metadata: {{name: keep-5}}
spec: {{successfulSnapshots: {{last: 5}}}}
---
apiVersion: kbackup.io/v1alpha1
kind: BackupConfiguration
metadata: {{name: db}}
spec:
  target: {{kind: Namespace, name: {ns}}}
  backends: [{{name: main, storageRef: {{name: minio}}, retentionPolicy: {{name: keep-5}}}}]
  sessions:
  - name: yearly
    scheduler: {{schedule: '0 0 1 1 *'}}
    timeout: 5m
    repositories: [{{name: apps, backend: main, directory: apps, encryptionSecret: {{name: repository-password}}}}]
    tasks: [{{name: manifest-backup}}, {{name: volume-backup}}]
---
",
        ns = ns.name
    )
}

/// The token pod `pod` wrote into its claim.
fn token(ns: &TestNamespace, pod: &str) -> String {
    ns.kubectl(&["exec", pod, "--", "cat", "/data/token"])
        .trim()
        .to_owned()
}

fn wait_ready(ns: &TestNamespace) {
    wait_for("StatefulSet db to have 2 ready pods", WAIT, || {
        let sts = object(ns, "statefulset", "db");
        (sts["status"]["readyReplicas"] == 2).then_some(())
    });
}

/// The keys of seed 004's RestoreSession status, and of its entries.
const STATUS_FIELDS: [&str; 10] = [
    "phase",
    "targetFound",
    "duration",
    "deadline",
    "totalComponents",
    "components",
    "hooks",
    "dependencies",
    "pausedBackups",
    "conditions",
];

fn keys(value: &Value) -> Vec<String> {
    value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no condition {type_}: {status}"))
}

#[test]
fn a_restore_session_brings_back_pod_0_of_a_statefulset_and_a_namespace_elsewhere() {
    let node = real_node();
    install_definitions();
    let ns = TestNamespace::create("kbackup-restore");
    let copy = CopyNamespace(format!("{}-copy", ns.name));
    let bucket = unique_name("restore");
    s3().create_bucket(&bucket);
    ns.apply(&format!(
        "{storage}{configuration}{db}apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{colour: blue}}
---
apiVersion: v1
kind: Service
metadata: {{name: db}}
spec: {{clusterIP: None, selector: {{app: db}}, ports: [{{port: 80}}]}}
",
        storage = storage(&node.shared_s3_endpoint, &bucket),
        configuration = configuration(&ns),
        db = statefulset(&node),
    ));
    let mut operator = Operator::start(&ns.name, &node);
    wait_ready(&ns);
    let (db0, db1) = (token(&ns, "db-0"), token(&ns, "db-1"));
    assert_eq!(db0.len(), 32, "{db0}");
    assert_ne!(db0, db1);

    // Backed up by the operator.
    ns.apply(
        "apiVersion: kbackup.io/v1alpha1
kind: BackupSession
metadata: {name: db-now}
spec: {invoker: {name: db}, session: yearly}
",
    );
    let backup = wait_for("the backup to end", WAIT, || {
        let status = object(&ns, "backupsession", "db-now")["status"].clone();
        matches!(status["phase"].as_str(), Some("Succeeded" | "Failed")).then_some(status)
    });
    assert_eq!(backup["phase"], "Succeeded", "{backup}");
    let snapshot = object(&ns, "snapshot", "db-now-apps");
    let components = keys(&snapshot["status"]["components"]);
    assert!(
        components
            .iter()
            .any(|c| c.ends_with("/statefulset/db/db-0/data")),
        "{components:?}"
    );

    // Lost: the StatefulSet and its claims (the ConfigMap stays).
    ns.kubectl(&["delete", "statefulset", "db", "--wait=true"]);
    ns.kubectl(&["delete", "pvc", "data-db-0", "data-db-1", "--wait=true"]);

    // Restored: pod 0's data only, from the latest snapshot.
    ns.apply(
        "apiVersion: kbackup.io/v1alpha1
kind: RestoreSession
metadata: {name: back}
spec:
  target: {apiGroup: apps, kind: StatefulSet, name: db}
  dataSource: {repository: apps, snapshot: latest, components: [pod-0]}
  timeout: 5m
",
    );
    let running = wait_for("restore back to run", WAIT, || {
        let status = object(&ns, "restoresession", "back")["status"].clone();
        (status["phase"] == "Running").then_some(status)
    });
    assert_eq!(running["pausedBackups"][0]["name"], "db", "{running}");
    assert_eq!(
        object(&ns, "backupconfiguration", "db")["spec"]["paused"],
        true,
        "paused during the restore"
    );
    // The operator is killed while the restore runs and started again: it follows the same
    // Job to the end (no second one).
    operator.kill();
    let operator = Operator::start(&ns.name, &node);
    let status = restore_ended(&ns, "back");
    let jobs = items(&ns, "jobs");
    let restore_jobs = jobs
        .iter()
        .filter(|j| j["metadata"]["labels"]["kbackup.io/restore-session"] == "back")
        .count();
    assert_eq!(restore_jobs, 1, "one Job for the restore");
    assert_eq!(status["phase"], "Succeeded", "{status}");

    // The status, field by field, in seed 004's shape.
    for key in keys(&status) {
        assert!(
            STATUS_FIELDS.contains(&key.as_str()),
            "{key} is not seed 004's: {status}"
        );
    }
    assert_eq!(status["targetFound"], false, "the StatefulSet was gone");
    assert!(
        status["duration"].as_str().unwrap().ends_with('s'),
        "{status}"
    );
    assert!(
        status["deadline"].as_str().unwrap().ends_with('Z'),
        "{status}"
    );
    assert_eq!(status["totalComponents"], 2, "{status}");
    let restored = &status["components"];
    let pod0 = format!("/{}/statefulset/db/db-0/data", ns.name);
    assert_eq!(keys(restored), [pod0.clone(), "manifests".to_owned()]);
    for (name, component) in restored.as_object().unwrap() {
        assert_eq!(component["phase"], "Succeeded", "{name}: {status}");
        assert!(component["duration"].as_str().unwrap().ends_with('s'));
        for key in keys(component) {
            assert!(
                ["phase", "duration", "error"].contains(&key.as_str()),
                "{key}"
            );
        }
    }
    let dependencies = status["dependencies"].as_array().unwrap();
    let kinds: Vec<&str> = dependencies
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Snapshot", "Repository", "BackupStorage", "Secret"]);
    assert_eq!(dependencies[0]["name"], "db-now-apps", "latest");
    for dependency in dependencies {
        assert_eq!(dependency["found"], true, "{dependency}");
        assert_eq!(dependency["namespace"], ns.name.as_str());
        let mut fields = keys(dependency);
        fields.sort();
        assert_eq!(fields, ["found", "kind", "name", "namespace"]);
    }
    assert!(
        status["pausedBackups"].as_array().is_none_or(Vec::is_empty),
        "{status}"
    );
    for (type_, reason) in [
        ("ValidationPassed", "ResourceValidationPassed"),
        (
            "RestoreExecutorEnsured",
            "SuccessfullyEnsuredRestoreExecutor",
        ),
        ("MetricsPushed", "SuccessfullyPushedMetrics"),
        ("BackupsResumed", "PausedBackupsResumed"),
    ] {
        let found = condition(&status, type_);
        assert_eq!(
            (found["status"].as_str(), found["reason"].as_str()),
            (Some("True"), Some(reason))
        );
        assert!(found["lastTransitionTime"].is_string());
    }
    assert_eq!(condition(&status, "RestoreTargetFound")["status"], "False");
    assert_eq!(
        object(&ns, "backupconfiguration", "db")["spec"]["paused"],
        false,
        "resumed after the restore"
    );

    // Pod 0 has its data back; pod 1's claim was restored empty and it wrote a new token.
    wait_ready(&ns);
    assert_eq!(token(&ns, "db-0"), db0);
    assert_ne!(token(&ns, "db-1"), db1);
    let table = ns.kubectl(&["get", "restoresessions"]);
    assert!(
        table.contains("REPOSITORY") && table.contains("Succeeded") && table.contains("latest"),
        "{table}"
    );
    let metrics = operator.get("/metrics").unwrap_or_default();
    assert!(
        metrics.contains(&format!(
            "kbackup_restore_sessions_ended_total{{namespace=\"{}\",phase=\"Succeeded\"}} 1",
            ns.name
        )),
        "{metrics}"
    );

    // The whole namespace, restored into another one (made by the restore) with both pods'
    // data as backed up; kbackup's own objects stay behind.
    ns.apply(&format!(
        "apiVersion: kbackup.io/v1alpha1
kind: RestoreSession
metadata: {{name: copy}}
spec:
  target: {{kind: Namespace, name: {ns}}}
  dataSource: {{repository: apps, snapshot: db-now-apps}}
  manifestOptions: {{restoreNamespace: {copy}}}
",
        ns = ns.name,
        copy = copy.0,
    ));
    let status = restore_ended(&ns, "copy");
    assert_eq!(status["phase"], "Succeeded", "{status}");
    assert_eq!(
        status["totalComponents"], 3,
        "manifests and both volumes: {status}"
    );
    let in_copy = |args: &[&str]| kubectl(&[&["-n", &copy.0], args].concat());
    wait_for("the copy's StatefulSet to be ready", WAIT, || {
        let sts: Value =
            serde_json::from_str(&in_copy(&["get", "statefulset", "db", "-o", "json"])?).ok()?;
        (sts["status"]["readyReplicas"] == 2).then_some(())
    });
    let copied = |pod: &str| {
        in_copy(&["exec", pod, "--", "cat", "/data/token"])
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!((copied("db-0"), copied("db-1")), (db0.clone(), db1.clone()));
    assert!(in_copy(&["get", "configmap", "settings"]).is_some());
    let own = in_copy(&[
        "get",
        "backupconfigurations,snapshots,repositories",
        "-o",
        "name",
    ]);
    assert_eq!(
        own.as_deref().map(str::trim),
        Some(""),
        "kbackup's own objects are not restored"
    );
    assert!(
        in_copy(&["get", "role", "copy-restore"]).is_none(),
        "the restore's Role in the other namespace is gone after it"
    );

    // A restore past its timeout is failed, its Job stopped, nothing left running.
    ns.apply(
        "apiVersion: kbackup.io/v1alpha1
kind: RestoreSession
metadata: {name: late}
spec:
  target: {apiGroup: apps, kind: StatefulSet, name: db}
  dataSource: {repository: apps, snapshot: latest}
  timeout: 1s
",
    );
    let status = restore_ended(&ns, "late");
    assert_eq!(status["phase"], "Failed", "{status}");
    let deadline = condition(&status, "DeadlineExceeded");
    assert_eq!(
        deadline["reason"], "FailedToCompleteWithinDeadline",
        "{status}"
    );
    wait_for("nothing of the late restore to run", WAIT, || {
        let running = items(&ns, "pods").into_iter().any(|p| {
            p["metadata"]["labels"]["kbackup.io/restore-session"] == "late"
                && matches!(p["status"]["phase"].as_str(), Some("Pending" | "Running"))
        });
        (!running).then_some(())
    });
    assert_eq!(
        object(&ns, "backupconfiguration", "db")["spec"]["paused"],
        false,
        "resumed after a failed restore too"
    );
}

/// kubectl against the test cluster; its stdout when it succeeded.
fn kubectl(args: &[&str]) -> Option<String> {
    let output = Command::new(backup_testing::kubectl())
        .arg(format!(
            "--kubeconfig={}",
            backup_testing::kubeconfig().display()
        ))
        .args(args)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The namespace a restore made, deleted when the test ends.
struct CopyNamespace(String);

impl Drop for CopyNamespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.0, "--wait=false"]);
    }
}
