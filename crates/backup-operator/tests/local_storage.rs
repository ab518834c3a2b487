//! A local storage (a claim) with the operator, against the test environment's API server and
//! real node: probed by a Job mounting the claim (a missing claim named), a configuration's
//! manifests and volumes backed up into it by a session whose Job and movers mount it, the
//! files really in the claim's directory on the node, and `WipeOut` deleting a Snapshot's
//! snapshot and then the whole repository through Jobs mounting it.

mod common;

use backup_testing::{TestNamespace, real_node};
use common::{
    KEEP_3, Operator, PASSWORD, WAIT, configuration, install_definitions, items, object, pause,
    wait_for, wait_idle, web_backed_up, web_workload, wipe_out,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[test]
fn a_claim_storage_is_probed_backed_up_into_and_wiped_out_by_jobs_that_mount_it() {
    let node = real_node();
    install_definitions();
    let ns = TestNamespace::create("kbackup-local");
    ns.apply(&format!(
        "{backups}{PASSWORD}{KEEP_3}apiVersion: kbackup.io/v1alpha1
kind: BackupStorage
metadata: {{name: claim}}
spec:
  storage: {{provider: local, local: {{claimName: backups, subPath: team}}}}
---
apiVersion: kbackup.io/v1alpha1
kind: BackupStorage
metadata: {{name: no-claim}}
spec:
  storage: {{provider: local, local: {{claimName: absent}}}}
---
{configuration}---
{web}",
        backups = node.claim("backups"),
        configuration = configuration(&ns, "web", "claim", "apps", true),
        web = web_workload(&node),
    ));
    let operator = Operator::start(&ns.name, &node);

    // Probed: the claim by a Job that mounts it (the first pod of a claim waits for it to
    // be provisioned), the missing one named without a Job.
    let missing = wait_for("storage no-claim to be probed", WAIT, || {
        let status = object(&ns, "backupstorage", "no-claim")["status"].clone();
        (status["phase"] == "NotReady").then_some(status)
    });
    assert_eq!(
        missing["conditions"][0]["reason"], "ClaimNotFound",
        "{missing}"
    );
    assert!(
        missing["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("absent"),
        "{missing}"
    );
    let ready = wait_for("storage claim to be Ready", WAIT, || {
        let status = object(&ns, "backupstorage", "claim")["status"].clone();
        (status["phase"] == "Ready").then_some(status)
    });
    assert!(
        ready["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("claim backups"),
        "{ready}"
    );
    assert!(
        !items(&ns, "jobs")
            .iter()
            .any(|j| j["metadata"]["name"] == "kbackup-probe-claim"),
        "the probe Job is deleted once read"
    );
    // Not probed again at once: its status stays as written.
    let version = object(&ns, "backupstorage", "claim")["metadata"]["resourceVersion"].clone();
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert_eq!(
        object(&ns, "backupstorage", "claim")["metadata"]["resourceVersion"],
        version,
        "a Ready storage is left alone until its next probe"
    );

    // A session on demand: the manifests and the volume (its mover mounting the storage's
    // claim too) into the claim.
    let (first, snapshot) = web_backed_up(&ns, "web-now-1");
    let repository = object(&ns, "repository", "apps");
    assert_eq!(repository["status"]["integrity"], true, "{repository}");

    // The repository is in the claim's directory on the node: team/apps.
    let root = claim_directory(&ns, "backups").join("team/apps");
    let id = snapshot["spec"]["snapshotId"].as_str().unwrap().to_owned();
    assert!(
        root.join("snapshots").join(&id).is_file(),
        "{} holds snapshot {id}",
        root.display()
    );
    assert!(root.join("config").is_file());

    // WipeOut: a Snapshot object takes its snapshot with it, a Repository its directory,
    // each through a Job mounting the claim.
    wait_idle(&ns, "web");
    pause(&ns, "web");
    let doomed = format!("{first}-apps");
    wipe_out(&ns, "snapshot", &doomed);
    assert!(
        !root.join("snapshots").join(&id).exists(),
        "the snapshot is gone"
    );
    assert!(root.join("config").is_file(), "the rest stays");
    wipe_out(&ns, "repository", "apps");
    assert_eq!(
        files_below(&root),
        Vec::<PathBuf>::new(),
        "the repository's data is gone"
    );
    assert!(
        !items(&ns, "jobs").iter().any(|j| j["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("kbackup-wipe")),
        "the wipe-out Jobs are deleted once read"
    );
    drop(operator);
}

/// The directory on this machine (the real node) of the volume bound to the claim.
fn claim_directory(ns: &TestNamespace, claim: &str) -> PathBuf {
    let claim = object(ns, "pvc", claim);
    let volume = claim["spec"]["volumeName"].as_str().unwrap().to_owned();
    let volume: Value =
        serde_json::from_str(&ns.kubectl(&["get", "pv", &volume, "-o", "json"])).unwrap();
    let spec = &volume["spec"];
    let path = spec["hostPath"]["path"]
        .as_str()
        .or(spec["local"]["path"].as_str())
        .unwrap_or_else(|| panic!("a node-local volume: {volume}"));
    PathBuf::from(path)
}

/// Every file below `root` (none when it is gone).
fn files_below(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(directory) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}
