//! A Google Cloud Storage storage with the operator, against the test environment's API
//! server, real node and GCS emulator (its XML API, as Google's): probed with the service
//! account key of its Secret (a bucket that does not exist named), a configuration's
//! manifests backed up into it by a session, the snapshot in the bucket.

mod common;

use backup_testing::{TestNamespace, gcs, real_node, unique_name};
use common::{
    KEEP_3, Operator, PASSWORD, WAIT, configuration, ended, install_definitions, object,
    trigger_when_idle, wait_for,
};
use serde_json::Value;

#[test]
fn a_gcs_storage_is_probed_with_its_key_and_backed_up_into() {
    let node = real_node();
    let server = gcs();
    install_definitions();
    let ns = TestNamespace::create("kbackup-gcs");
    let prefix = unique_name("operator");
    ns.apply(&format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: gcs-key}}
stringData: {{GOOGLE_SERVICE_ACCOUNT_KEY: '{key}'}}
---
{PASSWORD}{KEEP_3}apiVersion: kbackup.io/v1alpha1
kind: BackupStorage
metadata: {{name: gcs}}
spec:
  storage: {{provider: gcs, gcs: {{bucket: {bucket}, prefix: {prefix}, secretName: gcs-key}}}}
---
apiVersion: kbackup.io/v1alpha1
kind: BackupStorage
metadata: {{name: gcs-no-bucket}}
spec:
  storage: {{provider: gcs, gcs: {{bucket: no-such-bucket-kbackup, secretName: gcs-key}}}}
---
{configuration}---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{colour: red}}
",
        key = server.service_account_key,
        bucket = server.bucket,
        configuration = configuration(&ns, "web", "gcs", "apps", false),
    ));
    let _operator = Operator::start(&ns.name, &node);

    let ready = wait_for("storage gcs to be Ready", WAIT, || {
        let status = object(&ns, "backupstorage", "gcs")["status"].clone();
        (status["phase"] == "Ready").then_some(status)
    });
    assert_eq!(
        ready["conditions"][0]["reason"], "ProbeSucceeded",
        "{ready}"
    );
    let refused = wait_for("storage gcs-no-bucket to be probed", WAIT, || {
        let status = object(&ns, "backupstorage", "gcs-no-bucket")["status"].clone();
        (status["phase"] == "NotReady").then_some(status)
    });
    assert_eq!(
        refused["conditions"][0]["reason"], "WriteFailed",
        "{refused}"
    );
    assert!(
        !refused.to_string().contains("private_key"),
        "no credential in a status: {refused}"
    );

    let session = trigger_when_idle(&ns, "web", "web-now-1");
    let status = ended(&ns, &session);
    assert_eq!(status["phase"], "Succeeded", "{status}");
    let snapshot = object(&ns, "snapshot", &format!("{session}-apps"));
    assert_eq!(snapshot["status"]["phase"], "Succeeded", "{snapshot}");
    let id = snapshot["spec"]["snapshotId"].as_str().unwrap().to_owned();
    let repository = object(&ns, "repository", "apps");
    assert_eq!(repository["status"]["integrity"], true, "{repository}");

    // The snapshot is in the bucket, below the storage's prefix and the repository's directory.
    let listing = std::process::Command::new("curl")
        .args(["-sf", "-G"])
        .arg(format!(
            "{}/storage/v1/b/{}/o",
            server.endpoint, server.bucket
        ))
        .args([
            "--data-urlencode",
            &format!("prefix={prefix}/apps/snapshots/"),
        ])
        .output()
        .unwrap();
    assert!(listing.status.success(), "listing the bucket");
    let listing: Value = serde_json::from_slice(&listing.stdout).unwrap();
    let names: Vec<&str> = listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&format!("{prefix}/apps/snapshots/{id}").as_str()),
        "{names:?}"
    );
}
