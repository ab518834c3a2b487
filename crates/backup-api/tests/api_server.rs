//! The definitions on the test API server: accepted as structural schemas, objects of every
//! kind accepted in their documented shape, the shapes they forbid refused with the rule's
//! message, and `kubectl get` showing the printer columns.

use backup_testing::TestNamespace;

/// One object of each kind, as a user writes them.
const VALID: &str = r#"
apiVersion: kbackup.io/v1alpha1
kind: BackupStorage
metadata: {name: minio}
spec:
  storage:
    provider: s3
    s3: {endpoint: "http://minio.kbackup-testenv.svc:9000", bucket: kbackup-test, prefix: operator, secretName: minio-credentials}
  usagePolicy:
    allowedNamespaces: {from: Same}
  default: true
---
apiVersion: kbackup.io/v1alpha1
kind: RetentionPolicy
metadata: {name: keep-3}
spec:
  maxRetentionPeriod: 30d
  successfulSnapshots: {last: 3}
  failedSnapshots: {last: 1}
---
apiVersion: kbackup.io/v1alpha1
kind: Repository
metadata: {name: demo-manifests}
spec:
  storageRef: {name: minio}
  directory: demo/manifests
  encryptionSecret: {name: repository-password}
---
apiVersion: kbackup.io/v1alpha1
kind: BackupConfiguration
metadata: {name: demo}
spec:
  target: {apiGroup: "", kind: Namespace, name: demo}
  backends:
  - {name: minio, storageRef: {name: minio}, retentionPolicy: {name: keep-3}}
  sessions:
  - name: every-minute
    scheduler: {schedule: "* * * * *"}
    repositories:
    - {name: demo-manifests, backend: minio, directory: demo/manifests, encryptionSecret: {name: repository-password}}
    tasks:
    - {name: manifest-backup}
    - {name: volume-backup, params: {quiesce: scale}}
    timeout: 30m
---
apiVersion: kbackup.io/v1alpha1
kind: BackupSession
metadata: {name: demo-every-minute-1}
spec:
  invoker: {name: demo}
  session: every-minute
---
apiVersion: kbackup.io/v1alpha1
kind: Snapshot
metadata: {name: demo-manifests-demo-every-minute-1}
spec:
  repository: demo-manifests
  session: every-minute
  backupSession: demo-every-minute-1
"#;

#[test]
fn the_definitions_are_served_and_enforce_their_rules() {
    let ns = TestNamespace::create("kbackup-api");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let crds = dir.path().join("crds.yaml");
    std::fs::write(
        &crds,
        backup_api::crds_yaml().expect("the definitions serialize"),
    )
    .expect("writing them");
    let crds = crds.display().to_string();
    ns.kubectl(&["apply", "--server-side", "--force-conflicts", "-f", &crds]);
    ns.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd",
        "-l",
        "app.kubernetes.io/part-of=kbackup",
        "--timeout=60s",
    ]);
    ns.apply(VALID);

    let storages = ns.kubectl(&["get", "backupstorages"]);
    for column in ["PROVIDER", "DEFAULT", "DELETION-POLICY", "PHASE"] {
        assert!(storages.contains(column), "{storages}");
    }
    assert!(
        storages.contains("minio") && storages.contains("s3"),
        "{storages}"
    );
    let sessions = ns.kubectl(&["get", "bks"]);
    assert!(
        sessions.contains("INVOKER") && sessions.contains("every-minute"),
        "{sessions}"
    );
    let all = ns.kubectl(&["get", "kbackup", "-o", "name"]);
    assert_eq!(all.lines().count(), 6, "every kind in the category: {all}");
    let defaulted = ns.kubectl(&[
        "get",
        "backupconfiguration",
        "demo",
        "-o",
        "jsonpath={.spec.paused} {.spec.sessions[0].sessionHistoryLimit} {.spec.sessions[0].scheduler.concurrencyPolicy}",
    ]);
    assert_eq!(
        defaulted, "false 3 Forbid",
        "the API server applies the defaults"
    );

    for (manifest, message) in [
        (
            "kind: BackupStorage\nmetadata: {name: mixed}\nspec:\n  storage:\n    provider: s3\n    azure: {storageAccount: a, container: c, secretName: s}",
            "give the settings of the provider named, and no other",
        ),
        (
            "kind: BackupStorage\nmetadata: {name: selector}\nspec:\n  storage:\n    provider: gcs\n    gcs: {bucket: b, secretName: s}\n  usagePolicy:\n    allowedNamespaces: {from: Selector}",
            "from: Selector needs matchLabels",
        ),
        (
            "kind: Repository\nmetadata: {name: escape}\nspec:\n  storageRef: {name: minio}\n  directory: demo/../../other\n  encryptionSecret: {name: p}",
            "a relative directory without '..'",
        ),
        (
            "kind: RetentionPolicy\nmetadata: {name: vague}\nspec:\n  maxRetentionPeriod: 30days",
            "a number and one of h, d, w, mo, y",
        ),
        (
            "kind: BackupConfiguration\nmetadata: {name: twice}\nspec:\n  target: {kind: Namespace, name: demo}\n  backends: [{name: m, storageRef: {name: minio}, retentionPolicy: {name: keep-3}}]\n  sessions:\n  - {name: a, scheduler: {schedule: '@daily'}, repositories: [{name: r, backend: m, directory: d, encryptionSecret: {name: p}}], tasks: [{name: manifest-backup}]}\n  - {name: a, scheduler: {schedule: '@hourly'}, repositories: [{name: r, backend: m, directory: d, encryptionSecret: {name: p}}], tasks: [{name: manifest-backup}]}",
            "Duplicate value",
        ),
        (
            "kind: BackupConfiguration\nmetadata: {name: nothing}\nspec:\n  target: {kind: Namespace, name: demo}\n  backends: [{name: m, storageRef: {name: minio}, retentionPolicy: {name: keep-3}}]\n  sessions:\n  - {name: a, scheduler: {schedule: '@daily'}, repositories: [{name: r, backend: m, directory: d, encryptionSecret: {name: p}}], tasks: [{name: copy-everything}]}",
            "Unsupported value: \"copy-everything\"",
        ),
    ] {
        let manifest = format!("apiVersion: kbackup.io/v1alpha1\n{manifest}\n");
        let refused = ns.try_apply(&manifest).expect_err(&manifest);
        assert!(refused.contains(message), "{message:?} not in: {refused}");
    }
}
