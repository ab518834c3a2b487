//! `kbackup elasticsearch` end to end: the real Elasticsearch of the test environment,
//! reached through a port-forward to the simulated installation's Service, with an `fs`
//! snapshot repository of the installation's own, and its scaled workload.

mod common;

use backup_core::workflow::RESTORE_IN_PROGRESS;
use backup_elasticsearch::EsClient;
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn es() -> EsClient {
    EsClient::connect(&backup_testing::elasticsearch().url, None).unwrap()
}

async fn index(es: &EsClient, index: &str, from: usize, count: usize) {
    let mut body = String::new();
    for n in from..from + count {
        body.push_str(&format!(
            "{{\"index\":{{\"_index\":\"{index}\",\"_id\":\"{n}\"}}}}\n{{\"n\":{n}}}\n"
        ));
    }
    es.bulk(&body).await.unwrap();
}

impl Installation {
    /// Two indices and a datastream-like alias with one backing index, configured
    /// repository, and a snapshot of it all; returns the snapshot's document counts.
    async fn es_data_and_snapshot(&self, snapshot: &str) -> BTreeMap<String, u64> {
        let es = es();
        let p = &self.prefix;
        index(&es, &format!("{p}_topology"), 0, 40).await;
        index(&es, &format!("{p}_events"), 0, 25).await;
        let backing = format!(".ds-{p}_logs-000001");
        es.create_index(&backing, &format!("{{\"aliases\":{{\"{p}_logs\":{{}}}}}}"))
            .await
            .unwrap();
        index(&es, &backing, 0, 5).await;
        let configure = self.kbackup(&["elasticsearch", "configure", "--no-slm"]);
        assert!(configure.status.success(), "{}", text(&configure.stderr));
        let taken = self.kbackup(&[
            "-o",
            "json",
            "elasticsearch",
            "snapshot",
            "--name",
            snapshot,
            "--wait",
        ]);
        assert!(taken.status.success(), "{}", text(&taken.stderr));
        let info: Vec<Value> = serde_json::from_slice(&taken.stdout).unwrap();
        assert_eq!(info[0]["state"], "SUCCESS");
        serde_json::from_value(info[0]["docCounts"].clone()).unwrap()
    }

    async fn es_writer_replicas(&self) -> (i32, bool) {
        let w = self.workload("es-writer").await;
        (w.replicas, w.annotations.contains_key(RESTORE_IN_PROGRESS))
    }
}

#[tokio::test]
async fn configure_is_idempotent_and_names_what_this_node_lacks() {
    let sts = Installation::new(json!({})).await;
    let results = |out: &std::process::Output| -> Vec<String> {
        let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        rows.iter()
            .map(|r| r["result"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = sts.kbackup(&["-o", "json", "elasticsearch", "configure", "--no-slm"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(results(&first), ["Created"]);
    let second = sts.kbackup(&["-o", "json", "elasticsearch", "configure", "--no-slm"]);
    assert_eq!(results(&second), ["Unchanged"]);
    // With the SLM policy: the repository stays, the policy is refused by this node (no
    // x-pack): a partial result, exit 3, saying why.
    let with_slm = sts.kbackup(&["-o", "json", "elasticsearch", "configure"]);
    assert_eq!(
        with_slm.status.code(),
        Some(3),
        "{}",
        text(&with_slm.stderr)
    );
    let rows = results(&with_slm);
    assert_eq!(rows[0], "Unchanged");
    assert!(rows[1].starts_with("Failed"), "{rows:?}");
    assert!(text(&with_slm.stderr).contains("snapshot lifecycle management"));
    sts.cleanup().await;
}

#[tokio::test]
async fn a_dry_run_shows_the_s3_requests_without_credentials() {
    let sts = Installation::new(json!({})).await;
    let config = sts.home.path().join("s3.yaml");
    std::fs::write(
        &config,
        format!(
            "stackstate:\n  elasticsearch:\n    snapshotRepository: {{name: {p}-s3, bucket: sts-elasticsearch-backup, endpoint: \"minio:9000\", accessKey: AKIAVISIBLE, secretKey: do-not-print-me}}\n\
             \x20   slm: {{name: {p}-slm, schedule: \"0 0 3 * * ?\", snapshotTemplateName: \"<sts-backup-{{now{{yyyyMMdd-HHmm}}}}>\", repository: {p}-s3, indices: \"sts*\"}}\n",
            p = sts.prefix
        ),
    )
    .unwrap();
    let url = backup_testing::elasticsearch().url;
    let out = sts.kbackup(&[
        "--config",
        config.to_str().unwrap(),
        "-o",
        "json",
        "elasticsearch",
        "configure",
        "--dry-run",
        "--es-url",
        &url,
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !stdout.contains("do-not-print-me") && !stdout.contains("AKIAVISIBLE"),
        "{stdout}"
    );
    let rows: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(rows[0]["body"]["type"], "s3");
    assert_eq!(rows[0]["body"]["settings"]["path_style_access"], true);
    assert_eq!(rows[0]["body"]["settings"]["secret_key"], "<redacted>");
    assert_eq!(
        rows[1]["request"],
        format!("PUT /_slm/policy/{}-slm", sts.prefix)
    );
    assert!(!es().index_exists("_snapshot").await.unwrap_or(false));
    let repositories = reqwest_free_get(&format!("{url}/_snapshot/{}-s3", sts.prefix));
    assert!(
        repositories.contains("repository_missing_exception"),
        "nothing created: {repositories}"
    );
    sts.cleanup().await;
}

/// A GET with curl (the tests have no HTTP client of their own).
fn reqwest_free_get(url: &str) -> String {
    text(
        &std::process::Command::new("curl")
            .args(["-s", url])
            .output()
            .unwrap()
            .stdout,
    )
}

/// sts-backup's `elasticsearch list-indices`: the cluster's indices through the installation's
/// Service, by name, with health, shards, documents and sizes.
#[tokio::test]
async fn list_indices_shows_each_index_with_its_documents() {
    let sts = Installation::new(json!({})).await;
    let es = es();
    let p = sts.prefix.clone();
    index(&es, &format!("{p}_topology"), 0, 40).await;
    index(&es, &format!("{p}_events"), 0, 25).await;
    let pattern = format!("{p}_*");
    let listed = || {
        let out = sts.kbackup(&[
            "-o",
            "json",
            "elasticsearch",
            "list-indices",
            "--pattern",
            &pattern,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
    };
    // Documents count once refreshed (every second).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let indices = loop {
        let indices = listed();
        let counts: Vec<_> = indices.iter().map(|i| i["docsCount"].clone()).collect();
        if counts == [json!(25), json!(40)] {
            break indices;
        }
        assert!(std::time::Instant::now() < deadline, "{indices:?}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert_eq!(indices[0]["index"], format!("{p}_events"));
    assert_eq!(indices[1]["index"], format!("{p}_topology"));
    assert!(
        indices.iter().all(|i| i["status"] == "open"
            && i["primaries"].as_u64() >= Some(1)
            && i["storeSize"].as_u64() > Some(0)),
        "{indices:?}"
    );
    let table = sts.kbackup(&["elasticsearch", "list-indices", "--pattern", &pattern]);
    let table = text(&table.stdout);
    assert!(
        table.contains("HEALTH") && table.contains(&format!("{p}_topology")),
        "{table}"
    );
    let none = sts.kbackup(&[
        "-o",
        "json",
        "elasticsearch",
        "list-indices",
        "--pattern",
        &format!("{p}_nothing"),
    ]);
    assert!(none.status.success(), "{}", text(&none.stderr));
    assert_eq!(text(&none.stdout).trim(), "[]");
    for name in ["topology", "events"] {
        es.delete_index(&format!("{p}_{name}")).await.unwrap();
    }
    sts.cleanup().await;
}

#[tokio::test]
async fn restore_latest_deletes_rolls_over_restores_and_counts() {
    let sts = Installation::new(json!({})).await;
    let counts = sts.es_data_and_snapshot("before").await;
    let p = sts.prefix.clone();
    assert_eq!(counts[&format!("{p}_topology")], 40);
    // Life goes on after the snapshot: documents added and an index dropped.
    let es = es();
    index(&es, &format!("{p}_topology"), 40, 10).await;
    es.delete_index(&format!("{p}_events")).await.unwrap();

    let list = sts.kbackup(&["-o", "json", "elasticsearch", "list"]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let listed: Vec<Value> = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed[0]["name"], "before");
    let described = sts.kbackup(&[
        "-o",
        "yaml",
        "elasticsearch",
        "describe",
        "--snapshot",
        "before",
    ]);
    assert!(
        text(&described.stdout).contains("shardsFailed: 0"),
        "{}",
        text(&described.stdout)
    );

    let plan = sts.kbackup(&[
        "-o",
        "json",
        "elasticsearch",
        "restore",
        "--latest",
        "--dry-run",
    ]);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan[0]["rollover"], format!("{p}_logs"));
    assert_eq!(plan[0]["scaleDown"], json!([["Deployment/es-writer", 1]]));
    assert_eq!(
        sts.es_writer_replicas().await,
        (1, false),
        "a dry run changes nothing"
    );

    let out = sts.kbackup(&["-y", "-o", "json", "elasticsearch", "restore", "--latest"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("rolled over datastream {p}_logs")),
        "{stderr}"
    );
    let restored: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    for row in &restored {
        assert_eq!(row["expected"], row["restored"], "{row}");
    }
    assert_eq!(restored.len(), 3);
    let now = es.doc_counts(&format!("{p}_*")).await.unwrap();
    assert_eq!(now[&format!("{p}_topology")], 40, "back to the snapshot");
    assert_eq!(now[&format!("{p}_events")], 25, "the dropped index is back");
    assert_eq!(sts.es_writer_replicas().await, (1, false));
    sts.cleanup().await;
}

#[tokio::test]
async fn background_restore_is_finished_by_check_and_finalize() {
    let sts = Installation::new(json!({})).await;
    sts.es_data_and_snapshot("nightly").await;
    let out = sts.kbackup(&[
        "-y",
        "elasticsearch",
        "restore",
        "--snapshot",
        "nightly",
        "--background",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "nightly");
    assert_eq!(sts.es_writer_replicas().await, (0, true));
    let done = sts.kbackup(&[
        "-o",
        "json",
        "elasticsearch",
        "check-and-finalize",
        "--operation-id",
        "nightly",
        "--wait",
    ]);
    assert!(done.status.success(), "{}", text(&done.stderr));
    let report: Vec<Value> = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(report[0]["state"], "Done");
    assert_eq!(sts.es_writer_replicas().await, (1, false));
    let again = sts.kbackup(&[
        "elasticsearch",
        "check-and-finalize",
        "--operation-id",
        "nightly",
    ]);
    assert!(
        again.status.success(),
        "idempotent: {}",
        text(&again.stderr)
    );
    let delete = sts.kbackup(&["-y", "elasticsearch", "delete", "--snapshot", "nightly"]);
    assert!(delete.status.success(), "{}", text(&delete.stderr));
    let list = sts.kbackup(&["-o", "json", "elasticsearch", "list"]);
    assert_eq!(text(&list.stdout).trim(), "[]", "the snapshot is gone");
    let missing = sts.kbackup(&["-y", "elasticsearch", "delete", "--snapshot", "nightly"]);
    assert_eq!(
        missing.status.code(),
        Some(1),
        "a missing snapshot is an error"
    );
    sts.cleanup().await;
}

#[tokio::test]
async fn a_partial_snapshot_needs_allow_partial() {
    let sts = Installation::new(json!({})).await;
    sts.es_data_and_snapshot("complete").await;
    let es = es();
    let p = sts.prefix.clone();
    // An index whose primary can never be allocated: the snapshot of it is PARTIAL.
    es.create_index(
        &format!("{p}_stuck"),
        r#"{"settings": {"index.routing.allocation.require._name": "no-such-node", "number_of_replicas": 0}}"#,
    )
    .await
    .unwrap();
    let partial = sts.kbackup(&[
        "-o",
        "json",
        "elasticsearch",
        "snapshot",
        "--name",
        "partial",
        "--wait",
        "--partial",
    ]);
    assert_eq!(partial.status.code(), Some(3), "{}", text(&partial.stderr));
    let refused = sts.kbackup(&["-y", "elasticsearch", "restore", "--snapshot", "partial"]);
    assert_refused(&refused, "--allow-partial");
    assert_eq!(sts.es_writer_replicas().await, (1, false), "nothing scaled");
    assert!(
        es.index_exists(&format!("{p}_topology")).await.unwrap(),
        "nothing deleted"
    );
    es.delete_index(&format!("{p}_stuck")).await.unwrap();
    let allowed = sts.kbackup(&[
        "-y",
        "-o",
        "json",
        "elasticsearch",
        "restore",
        "--snapshot",
        "partial",
        "--allow-partial",
        "--indices",
        &format!("{p}_topology,{p}_events"),
    ]);
    assert!(allowed.status.success(), "{}", text(&allowed.stderr));
    assert_eq!(sts.es_writer_replicas().await, (1, false));
    sts.cleanup().await;
}

#[tokio::test]
async fn rename_restores_next_to_the_live_indices() {
    let sts = Installation::new(json!({})).await;
    sts.es_data_and_snapshot("copy").await;
    let p = sts.prefix.clone();
    let es = es();
    index(&es, &format!("{p}_topology"), 40, 5).await;
    let out = sts.kbackup(&[
        "-y",
        "-o",
        "json",
        "elasticsearch",
        "restore",
        "--snapshot",
        "copy",
        "--indices",
        &format!("{p}_topology"),
        "--rename-pattern",
        "(.+)",
        "--rename-replacement",
        "restored-$1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let counts = es.doc_counts(&format!("*{p}_topology")).await.unwrap();
    assert_eq!(counts[&format!("restored-{p}_topology")], 40);
    assert_eq!(
        counts[&format!("{p}_topology")],
        45,
        "the live index is untouched"
    );
    assert_eq!(sts.es_writer_replicas().await, (1, false), "nothing scaled");
    es.delete_index(&format!("restored-{p}_topology"))
        .await
        .unwrap();
    sts.cleanup().await;
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let sts = Installation::new(json!({})).await;
    sts.es_data_and_snapshot("good").await;
    let p = sts.prefix.clone();
    let unchanged = |label: &str| {
        let label = label.to_owned();
        let sts = &sts;
        let p = p.clone();
        async move {
            assert_eq!(
                sts.es_writer_replicas().await,
                (1, false),
                "{label}: nothing scaled"
            );
            assert!(
                es().index_exists(&format!("{p}_topology")).await.unwrap(),
                "{label}: nothing deleted"
            );
        }
    };
    let missing = sts.kbackup(&[
        "-y",
        "elasticsearch",
        "restore",
        "--snapshot",
        "no-such-snapshot",
    ]);
    assert_refused(&missing, "no-such-snapshot");
    unchanged("missing snapshot").await;

    let down = sts.kbackup(&[
        "-y",
        "elasticsearch",
        "restore",
        "--latest",
        "--es-url",
        "http://127.0.0.1:1",
    ]);
    assert_refused(&down, "cannot reach Elasticsearch");
    unchanged("Elasticsearch down").await;

    let no_password = sts.kbackup(&["-y", "elasticsearch", "list", "--es-username", "elastic"]);
    assert_refused(&no_password, "KBACKUP_ES_PASSWORD");

    // A configuration naming a repository that does not exist.
    let config = sts.home.path().join("wrong-repo.yaml");
    let url = backup_testing::elasticsearch().url;
    std::fs::write(
        &config,
        format!(
            "stackstate:\n  elasticsearch:\n    restore: {{repository: no-such-repository, scaleDownLabelSelector: \"{ES_LABEL}=true\", indexPrefix: {p}, indicesPattern: \"{p}*\"}}\n"
        ),
    )
    .unwrap();
    let wrong = sts.kbackup(&[
        "--config",
        config.to_str().unwrap(),
        "-y",
        "elasticsearch",
        "restore",
        "--latest",
        "--es-url",
        &url,
    ]);
    assert_refused(&wrong, "no-such-repository");
    unchanged("wrong repository").await;
    sts.cleanup().await;
}

#[tokio::test]
async fn elasticsearch_runs_under_the_documented_role_and_not_with_less() {
    let sts = Installation::new(json!({})).await;
    sts.es_data_and_snapshot("before").await;
    let account = service_account_kubeconfig(&sts.namespace, "backup", sts.home.path());
    let bind = |drop| {
        let yaml = role_yaml(
            &sts.namespace,
            "backup",
            "elasticsearch",
            &sts.namespace,
            drop,
        );
        kubectl(&["apply", "-f", "-"], Some(&yaml));
    };
    bind(Some("get"));
    let out = sts.kbackup_as(&account, &["elasticsearch", "list"]);
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("cannot get resource"), "{stderr}");
    bind(None);
    let list = sts.kbackup_as(&account, &["-o", "json", "elasticsearch", "list"]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let out = sts.kbackup_as(
        &account,
        &["-y", "-o", "json", "elasticsearch", "restore", "--latest"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        sts.es_writer_replicas().await,
        (1, false),
        "{}",
        text(&out.stderr)
    );
    sts.cleanup().await;
}
