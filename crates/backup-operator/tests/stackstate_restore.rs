//! The operator restoring a simulated StackState installation's StackGraph from a
//! RestoreSession (kwok nodes run its Jobs; the archives are in the test MinIO): the newest
//! archive chosen, the installation's backups paused, its StackGraph users scaled down while
//! the data store's own restore Job runs, then scaled back up and the Job removed, as
//! `kbackup stackgraph restore` does; a restore whose Job fails reports its last log line and
//! scales back up too; a Snapshot that is not there fails it before anything is touched.
//! And the installation's Elasticsearch (the test environment's): the newest snapshot of its
//! repository restored over changed live indices, the writer scaled down meanwhile, the
//! document counts compared with the snapshot's record.

mod common;

use backup_testing::{TestNamespace, real_node, s3, unique_name};
use common::{
    Operator, Search, WAIT, backup_configuration, install_definitions, object, restore_ended,
    scaled_deployment, scratch_volumes, wait_for,
};

const SCALED: &str = "observability.suse.com/scalable-during-stackgraph-restore";
const ES_SCALED: &str = "observability.suse.com/scalable-during-es-restore";
/// The kwok stage that fails a pod's container (the test environment's).
const FAIL_LABEL: &str = "pod-container-running-failed.stage.kwok.x-k8s.io";

#[test]
fn a_restore_session_restores_stackgraph_by_its_own_job_and_scales_back_up() {
    let node = real_node();
    install_definitions();
    let ns = TestNamespace::create("kbackup-sts-restore");
    let bucket = unique_name("operator-sts-graph");
    s3().create_bucket(&bucket);
    for archive in [
        "sts-backup-20261120-0300.graph",
        "sts-backup-20261121-0300.graph",
    ] {
        s3().put(&bucket, archive, b"graph");
    }
    let volumes = scratch_volumes(&ns, 2);
    ns.apply(&installation(&ns, &bucket, false));
    wait_for("the server to run", WAIT, || {
        let server = object(&ns, "deployment", "server");
        (server["status"]["readyReplicas"] == 2).then_some(())
    });
    let _operator = Operator::start(&ns.name, &node);

    ns.apply(&restore_session(&ns, "graph", "latest"));
    // While the Job runs: the server is down, the Job is named in the status.
    let job = wait_for("the restore Job to be named", WAIT, || {
        let status = object(&ns, "restoresession", "graph")["status"].clone();
        status["dataStoreOperation"].as_str().map(str::to_owned)
    });
    assert!(job.starts_with("stackgraph-restore-"), "{job}");
    let status = restore_ended(&ns, "graph");
    assert_eq!(status["phase"], "Succeeded", "{status}");
    assert_eq!(status["components"]["stackgraph"]["phase"], "Succeeded");
    assert_eq!(status["totalComponents"], 1);
    let message = |type_: &str| {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == type_)
            .map(|c| c["message"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no condition {type_}: {status}"))
    };
    let ensured = message("RestoreExecutorEnsured");
    assert!(
        ensured.contains("sts-backup-20261121-0300.graph") && ensured.contains("server (2)"),
        "the newest archive, the server scaled down: {ensured}"
    );
    assert!(
        message("DataStoreFinalized").contains("server (2)"),
        "{status}"
    );
    assert_eq!(
        object(&ns, "deployment", "server")["spec"]["replicas"],
        2,
        "scaled back up"
    );
    assert!(
        !ns.kubectl(&["get", "jobs", "-o", "name"]).contains(&job),
        "the restore Job is removed"
    );

    // From a Snapshot object a data-store session wrote (its names listed together): the
    // older archive it recorded. Its Job fails: its last log line is the error, the server
    // is scaled back up.
    ns.apply(
        "apiVersion: kbackup.io/v1alpha1
kind: Snapshot
metadata: {name: nightly}
spec: {repository: archives, session: nightly, backupSession: nightly-1,
  snapshotId: 'sts-backup-20261120-0300.graph,sts-backup-20261120-0400.sty'}
",
    );
    ns.kubectl(&[
        "patch",
        "snapshot",
        "nightly",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Succeeded","components":{"stackgraph":{"phase":"Succeeded"},"settings":{"phase":"Succeeded"}}}}"#,
    ]);
    ns.apply(&installation(&ns, &bucket, true));
    ns.apply(&restore_session(&ns, "failing", "nightly"));
    let status = restore_ended(&ns, "failing");
    assert_eq!(status["phase"], "Failed", "{status}");
    assert!(
        status["conditions"]
            .to_string()
            .contains("restores sts-backup-20261120-0300.graph"),
        "the archive the Snapshot recorded: {status}"
    );
    assert!(
        status["dependencies"]
            .to_string()
            .contains(r#""kind":"Snapshot","name":"nightly""#),
        "{status}"
    );
    let error = status["components"]["stackgraph"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("failed"), "{status}");
    assert_eq!(object(&ns, "deployment", "server")["spec"]["replicas"], 2);

    // An archive that is not there: refused before anything is scaled down.
    ns.apply(&restore_session(&ns, "missing", "no-such-snapshot"));
    let status = restore_ended(&ns, "missing");
    assert_eq!(status["phase"], "Failed", "{status}");
    assert!(
        status.to_string().contains("no-such-snapshot"),
        "names the Snapshot: {status}"
    );
    assert_eq!(object(&ns, "deployment", "server")["spec"]["replicas"], 2);
    for volume in volumes {
        ns.kubectl(&["delete", "pv", &volume, "--wait=false"]);
    }
}

#[test]
fn a_restore_session_restores_elasticsearch_from_its_newest_snapshot() {
    let node = real_node();
    install_definitions();
    let ns = TestNamespace::create("kbackup-es-restore");
    let search = Search::new();
    let prefix = ns.name.clone();
    let repository = format!(
        "{}/{prefix}",
        backup_testing::elasticsearch().repo_path.display()
    );
    search.call(
        "PUT",
        &format!("_snapshot/{prefix}"),
        &format!(r#"{{"type": "fs", "settings": {{"location": "{repository}"}}}}"#),
    );
    for n in 0..3 {
        search.call(
            "PUT",
            &format!("{prefix}_topology/_doc/{n}"),
            r#"{"kept": true}"#,
        );
    }
    search.call("POST", &format!("{prefix}_topology/_refresh"), "");
    let taken = search.call(
        "PUT",
        &format!("_snapshot/{prefix}/nightly?wait_for_completion=true"),
        &format!(r#"{{"indices": "{prefix}_*", "include_global_state": false}}"#),
    );
    assert_eq!(taken["snapshot"]["state"], "SUCCESS", "{taken}");
    // Changed since: a document more in the live index.
    search.call(
        "PUT",
        &format!("{prefix}_topology/_doc/9?refresh=true"),
        r#"{"late": true}"#,
    );
    assert_eq!(search.count(&format!("{prefix}_topology")), 4);
    ns.apply(&es_installation(&ns, &repository));
    wait_for("the writer to run", WAIT, || {
        let writer = object(&ns, "deployment", "es-writer");
        (writer["status"]["readyReplicas"] == 1).then_some(())
    });
    let _operator = Operator::start(&ns.name, &node);

    ns.apply(&format!(
        "apiVersion: kbackup.io/v1alpha1
kind: RestoreSession
metadata: {{name: search}}
spec:
  target: {{kind: Namespace, name: {namespace}}}
  dataSource: {{snapshot: latest}}
  tasks: [elasticsearch-restore]
  timeout: 5m
  params: {{elasticsearchUrl: '{url}'}}
",
        namespace = ns.name,
        url = search.url,
    ));
    let status = restore_ended(&ns, "search");
    assert_eq!(status["phase"], "Succeeded", "{status}");
    assert_eq!(status["components"]["elasticsearch"]["phase"], "Succeeded");
    assert_eq!(status["dataStoreOperation"], "nightly", "{status}");
    let text = status["conditions"].to_string();
    assert!(
        text.contains("Elasticsearch restores snapshot nightly") && text.contains("es-writer (1)"),
        "the writer scaled down, then up: {status}"
    );
    assert_eq!(
        search.count(&format!("{prefix}_topology")),
        3,
        "back to the snapshot"
    );
    assert_eq!(
        object(&ns, "deployment", "es-writer")["spec"]["replicas"],
        1
    );
    search.call("DELETE", &format!("{prefix}_*"), "");
    search.call("DELETE", &format!("_snapshot/{prefix}/nightly"), "");
}

/// The installation's backup configuration for Elasticsearch (its snapshot repository at
/// `repository`, its indices `<namespace>_*`) and the writer it scales down.
fn es_installation(ns: &TestNamespace, repository: &str) -> String {
    let prefix = &ns.name;
    let config = format!(
        "elasticsearch:
  service: {{name: suse-observability-elasticsearch-master-headless, port: 9200}}
  snapshotRepository: {{name: {prefix}, type: fs, location: '{repository}'}}
  restore:
    repository: {prefix}
    scaleDownLabelSelector: {ES_SCALED}=true
    indexPrefix: {prefix}
    datastreamIndexPrefix: .ds-{prefix}_logs
    datastreamName: {prefix}_logs
    indicesPattern: '{prefix}_*'
"
    );
    backup_configuration(&config) + &scaled_deployment("es-writer", ES_SCALED, 1)
}

/// A StackGraph RestoreSession of the installation in `ns`, from `snapshot`, its archives
/// listed straight from the test MinIO.
fn restore_session(ns: &TestNamespace, name: &str, snapshot: &str) -> String {
    format!(
        "apiVersion: kbackup.io/v1alpha1
kind: RestoreSession
metadata: {{name: {name}}}
spec:
  target: {{kind: Namespace, name: {namespace}}}
  dataSource: {{snapshot: {snapshot}}}
  tasks: [stackgraph-restore]
  timeout: 5m
  params: {{storageEndpoint: '{endpoint}'}}
",
        namespace = ns.name,
        endpoint = s3().endpoint,
    )
}

/// The installation: its backup configuration (the restore Job's pod failing when `fail`),
/// the MinIO keys, and a server of 2 replicas that uses StackGraph.
fn installation(ns: &TestNamespace, bucket: &str, fail: bool) -> String {
    let labels = match fail {
        true => format!("{{{FAIL_LABEL}: 'true'}}"),
        false => "{}".into(),
    };
    let config = format!(
        "kubernetes: {{commonLabels: {labels}}}
minio: {{service: {{name: suse-observability-minio, port: 9000}}}}
stackgraph:
  bucket: {bucket}
  s3Prefix: ''
  restore:
    scaleDownLabelSelector: {SCALED}=true
    zookeeperQuorum: suse-observability-zookeeper:2181
    job: {{image: 'quay.io/stackstate/stackstate-backup-container:test', waitImage: busybox}}
    pvc: {{size: 1Gi, storageClassName: {class}}}
",
        class = ns.name
    );
    backup_configuration(&config) + &scaled_deployment("server", SCALED, 2)
}
