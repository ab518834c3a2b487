//! BackupVerifiers with the operator, against the test environment's API server, real node
//! and MinIO: a Deployment whose claim holds a file, backed up by the operator (manifests and
//! volume); a verifier restores the snapshot into a scratch namespace, its query hook finds
//! the file in the restored application's pod, the Snapshot says `Verified` with the evidence,
//! the scratch namespace is deleted and the metric counts it; then the repository's packs are
//! damaged and a verification of the same snapshot records `VerificationFailed`.

mod common;

use backup_testing::{TestNamespace, real_node, s3, unique_name};
use common::{
    KEEP_3, Operator, PASSWORD, WAIT, ended, install_definitions, object, storage, trigger,
    wait_for, web_workload,
};
use serde_json::Value;

/// The configuration `web` (manifests and volumes into the repository `apps`, on a schedule
/// that does not come during the test) and the HookTemplate `has-file`.
fn declarations(ns: &TestNamespace) -> String {
    format!(
        "{KEEP_3}apiVersion: kbackup.io/v1alpha1
kind: BackupConfiguration
metadata: {{name: web}}
spec:
  target: {{kind: Namespace, name: {ns}}}
  backends: [{{name: main, storageRef: {{name: minio}}, retentionPolicy: {{name: keep-3}}}}]
  sessions:
  - name: every-minute
    scheduler: {{schedule: '0 0 1 1 *'}}
    timeout: 5m
    repositories: [{{name: apps, backend: main, directory: apps, encryptionSecret: {{name: repository-password}}}}]
    tasks: [{{name: manifest-backup}}, {{name: volume-backup}}]
---
apiVersion: kbackup.io/v1alpha1
kind: HookTemplate
metadata: {{name: has-file}}
spec:
  action: {{exec: {{command: [grep, -q, kept, /data/file]}}}}
  executor: {{type: Pod, pod: {{selector: app=web}}}}
---
",
        ns = ns.name
    )
}

fn verifier(name: &str) -> String {
    format!(
        "apiVersion: kbackup.io/v1alpha1
kind: BackupVerifier
metadata: {{name: {name}}}
spec:
  repository: apps
  timeout: 5m
  queryHooks:
  - {{name: file-restored, hookTemplate: {{name: has-file}}, timeout: 10s, maxRetry: 10}}
"
    )
}

/// Waits until the verifier recorded a verification; its status.
fn verified(ns: &TestNamespace, name: &str) -> Value {
    wait_for(&format!("verifier {name} to end"), WAIT, || {
        let status = object(ns, "backupverifier", name)["status"].clone();
        status["lastVerification"]["result"]
            .is_string()
            .then_some(status)
    })
}

/// Whether the namespace is gone or going.
fn namespace_going(name: &str) -> bool {
    let output = std::process::Command::new(backup_testing::kubectl())
        .args(["get", "namespace", name, "-o", "jsonpath={.status.phase}"])
        .env("KUBECONFIG", backup_testing::kubeconfig())
        .output()
        .expect("kubectl");
    !output.status.success() || String::from_utf8_lossy(&output.stdout) == "Terminating"
}

#[test]
fn a_verifier_proves_a_snapshot_restores_and_catches_a_damaged_one() {
    let node = real_node();
    install_definitions();
    let ns = TestNamespace::create("kbackup-verify");
    let bucket = unique_name("verify");
    s3().create_bucket(&bucket);
    ns.apply(&format!(
        "{storage}{PASSWORD}{declarations}{web}",
        storage = storage(&node.shared_s3_endpoint, &bucket),
        declarations = declarations(&ns),
        web = web_workload(&node),
    ));
    ns.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=120s",
    ]);
    let operator = Operator::start(&ns.name, &node);
    wait_for("the storage to be ready", WAIT, || {
        (object(&ns, "backupstorage", "minio")["status"]["phase"] == "Ready").then_some(())
    });
    trigger(&ns, "web", "first");
    assert_eq!(ended(&ns, "first")["phase"], "Succeeded");

    // Verified: restored whole into a scratch namespace, the file found there.
    ns.apply(&verifier("proof"));
    let status = verified(&ns, "proof");
    let last = &status["lastVerification"];
    assert_eq!(last["result"], "Verified", "{status}");
    assert_eq!(last["snapshot"], "first-apps");
    let evidence = last["evidence"].to_string();
    assert!(
        evidence.contains("Succeeded")
            && evidence.contains("web-data")
            && evidence.contains("query hook file-restored: Succeeded"),
        "{evidence}"
    );
    assert_eq!(status["phase"], "Idle");
    let snapshot = object(&ns, "snapshot", "first-apps");
    assert_eq!(
        snapshot["status"]["verificationStatus"], "Verified",
        "{snapshot}"
    );
    assert_eq!(snapshot["status"]["verification"]["verifier"], "proof");
    assert_eq!(
        snapshot["status"]["phase"], "Succeeded",
        "the rest of its status kept"
    );
    let scratch = evidence
        .split(" into ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .expect("the scratch namespace in the evidence")
        .to_owned();
    assert!(scratch.starts_with(&ns.name), "{scratch}");
    assert!(
        namespace_going(&scratch),
        "the scratch namespace {scratch} is deleted"
    );
    let metrics = operator.get("/metrics").unwrap_or_default();
    assert!(
        metrics.contains(&format!(
            "kbackup_backup_verifications_total{{namespace=\"{}\",verifier=\"proof\",result=\"Verified\"}} 1",
            ns.name
        )),
        "{metrics}"
    );

    // Damaged: every pack of the repository has a byte flipped.
    let server = s3();
    let packs = server.keys(&bucket, "apps/data/");
    assert!(!packs.is_empty());
    for key in &packs {
        let mut bytes = server.object(&bucket, key);
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        server.put(&bucket, key, &bytes);
    }
    ns.apply(&verifier("proof-again"));
    let status = verified(&ns, "proof-again");
    let last = &status["lastVerification"];
    assert_eq!(last["result"], "VerificationFailed", "{status}");
    assert_eq!(last["snapshot"], "first-apps");
    let evidence = last["evidence"].to_string();
    assert!(evidence.contains("Failed"), "{evidence}");
    assert_eq!(status["conditions"][0]["reason"], "SnapshotNotVerified");
    let snapshot = object(&ns, "snapshot", "first-apps");
    assert_eq!(
        snapshot["status"]["verificationStatus"], "VerificationFailed",
        "{snapshot}"
    );
    let metrics = operator.get("/metrics").unwrap_or_default();
    assert!(
        metrics.contains(&format!(
            "kbackup_backup_verifications_total{{namespace=\"{}\",verifier=\"proof-again\",result=\"VerificationFailed\"}} 1",
            ns.name
        )),
        "{metrics}"
    );
}
