//! EsClient against the real Elasticsearch of the test environment: server info, the
//! repository configuration, snapshots with recorded document counts, rollover, deletion.

use backup_core::stackstate::StackStateConfig;
use backup_elasticsearch::{Change, EsClient, NewSnapshot, repository_request, slm_request};

fn client() -> EsClient {
    EsClient::connect(&backup_testing::elasticsearch().url, None).unwrap()
}

/// Takes snapshot `snapshot` of `indices` into `repository`, waiting; it must succeed.
async fn take_snapshot(es: &EsClient, repository: &str, snapshot: &str, indices: &str) {
    let request = NewSnapshot {
        name: snapshot.into(),
        indices: indices.into(),
        wait: true,
        partial: false,
    };
    let taken = es.create_snapshot(repository, &request).await.unwrap();
    assert_eq!(taken.unwrap().state, "SUCCESS");
}

/// A configuration with an fs repository of its own under the node's `path.repo`.
fn config(name: &str, location_suffix: &str) -> StackStateConfig {
    let server = backup_testing::elasticsearch();
    let text = format!(
        "elasticsearch:\n  snapshotRepository: {{name: {name}, type: fs, location: \"{}/{name}{location_suffix}\"}}\n\
         \x20 slm: {{name: {name}-slm, schedule: \"0 0 3 * * ?\", snapshotTemplateName: \"<{name}-{{now{{yyyyMMdd-HHmm}}}}>\", repository: {name}, indices: \"{name}*\", retentionExpireAfter: 30d}}\n",
        server.repo_path.display()
    );
    StackStateConfig::from_documents(("test", &text), None).unwrap()
}

async fn index_documents(es: &EsClient, index: &str, count: usize) {
    let mut body = String::new();
    for n in 0..count {
        body.push_str(&format!(
            "{{\"index\":{{\"_index\":\"{index}\"}}}}\n{{\"n\":{n}}}\n"
        ));
    }
    es.bulk(&body).await.unwrap();
}

#[tokio::test]
async fn names_the_server_it_reached() {
    let info = client().server_info().await.unwrap();
    assert_eq!(info.cluster_name, "kbackup-test");
    assert!(info.version.starts_with("7.17."), "{}", info.version);
}

#[tokio::test]
async fn a_dead_endpoint_is_named_in_the_error() {
    let error = EsClient::connect("http://127.0.0.1:1", None)
        .unwrap()
        .server_info()
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("cannot reach Elasticsearch at http://127.0.0.1:1"),
        "{error}"
    );
    assert!(EsClient::connect("not a url", None).is_err());
}

#[tokio::test]
async fn the_repository_is_created_once_then_left_alone_or_updated() {
    let es = client();
    let name = backup_testing::unique_name("repo");
    let request = repository_request(
        config(&name, "")
            .elasticsearch_snapshot_repository()
            .unwrap(),
    );
    assert_eq!(
        es.apply_repository(&request).await.unwrap(),
        Change::Created
    );
    assert_eq!(
        es.apply_repository(&request).await.unwrap(),
        Change::Unchanged
    );
    let moved = repository_request(
        config(&name, "-moved")
            .elasticsearch_snapshot_repository()
            .unwrap(),
    );
    assert_eq!(es.apply_repository(&moved).await.unwrap(), Change::Updated);
    // This node has no x-pack: the SLM policy is refused, and the error says why.
    let slm = slm_request(config(&name, "").elasticsearch_slm().unwrap());
    let error = es.apply_slm(&slm).await.unwrap_err().to_string();
    assert!(error.contains("snapshot lifecycle management"), "{error}");
}

#[tokio::test]
async fn snapshots_record_document_counts_and_list_newest_first() {
    let es = client();
    let name = backup_testing::unique_name("snaps");
    let config = config(&name, "");
    es.apply_repository(&repository_request(
        config.elasticsearch_snapshot_repository().unwrap(),
    ))
    .await
    .unwrap();
    index_documents(&es, &format!("{name}-a"), 7).await;
    index_documents(&es, &format!("{name}-b"), 3).await;
    for snapshot in ["first", "second"] {
        take_snapshot(&es, &name, snapshot, &format!("{name}-*")).await;
    }
    let list = es.snapshots(&name).await.unwrap();
    let names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["second", "first"]);
    let first = es.snapshot(&name, "first").await.unwrap();
    assert_eq!(first.indices, [format!("{name}-a"), format!("{name}-b")]);
    assert_eq!(first.doc_counts.unwrap()[&format!("{name}-a")], 7);
    es.delete_snapshot(&name, "first").await.unwrap();
    let missing = es.snapshot(&name, "first").await.unwrap_err().to_string();
    assert!(missing.contains("first"), "{missing}");
    let no_repo = es
        .snapshots("no-such-repository")
        .await
        .unwrap_err()
        .to_string();
    assert!(no_repo.contains("no-such-repository"), "{no_repo}");
}

#[tokio::test]
async fn rollover_makes_a_new_write_index_and_delete_waits_until_gone() {
    let es = client();
    let name = backup_testing::unique_name("logs");
    let first = format!(".ds-{name}-000001");
    es.create_index(
        &first,
        &format!("{{\"aliases\":{{\"{name}\":{{\"is_write_index\":true}}}}}}"),
    )
    .await
    .unwrap();
    es.rollover(&name).await.unwrap();
    let indices = es.indices().await.unwrap();
    assert!(
        indices.contains(&format!(".ds-{name}-000002")),
        "{indices:?}"
    );
    es.delete_index(&first).await.unwrap();
    assert!(!es.index_exists(&first).await.unwrap());
    es.delete_index(&format!(".ds-{name}-000002"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_snapshot_is_taken_listed_described_and_restored_by_the_restore_engine() {
    use backup_core::testing::FakeCluster;
    use backup_core::{NoProgress, RestoreEngine, RestoreState};
    use backup_elasticsearch::{EsRestore, RestoreRequest, SnapshotRestore};
    let es = client();
    let name = backup_testing::unique_name("engine");
    es.apply_repository(&repository_request(
        config(&name, "")
            .elasticsearch_snapshot_repository()
            .unwrap(),
    ))
    .await
    .unwrap();
    index_documents(&es, &format!("{name}-data"), 12).await;
    let pattern = format!("{name}-*");
    take_snapshot(&es, &name, &format!("{name}-snap"), &pattern).await;
    let listed = es.snapshots(&name).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, "SUCCESS");
    let described =
        serde_json::to_value(es.snapshot(&name, &listed[0].name).await.unwrap()).unwrap();
    assert_eq!(described["docCounts"][format!("{name}-data")], 12);
    es.delete_index(&format!("{name}-data")).await.unwrap();

    // No workload uses these indices: the cluster side of the restore is empty.
    let cluster = FakeCluster::new();
    let settings = backup_core::stackstate::ElasticsearchRestore {
        index_prefix: name.clone(),
        indices_pattern: pattern.clone(),
        ..Default::default()
    };
    let restore = EsRestore::new(&es, &cluster, "sts", &name, settings);
    let plan = restore
        .plan(&SnapshotRestore {
            snapshot: listed[0].clone(),
            request: RestoreRequest {
                indices: pattern.clone(),
                allow_partial: false,
                rename: None,
            },
        })
        .await
        .unwrap();
    assert_eq!(plan.restore, [format!("{name}-data")]);
    let operation = restore.operation(&plan);
    restore
        .start(&plan, chrono::Utc::now(), &NoProgress)
        .await
        .unwrap();
    let state = restore
        .wait(&operation, std::time::Duration::from_secs(60), &NoProgress)
        .await
        .unwrap();
    assert_eq!(state, RestoreState::Succeeded);
    assert_eq!(
        restore.observe(&operation).await.unwrap(),
        RestoreState::Succeeded
    );
    let outcome = restore.finalize(&operation).await.unwrap();
    assert_eq!(outcome.recovering_shards, 0);
    assert_eq!(
        es.doc_counts(&pattern).await.unwrap()[&format!("{name}-data")],
        12
    );
    assert_eq!(es.restoring(&name, &listed[0].name).await.unwrap(), 0);
}

#[tokio::test]
async fn a_restore_that_cannot_place_its_shards_is_seen_in_progress() {
    let es = client();
    let name = backup_testing::unique_name("stuck");
    es.apply_repository(&repository_request(
        config(&name, "")
            .elasticsearch_snapshot_repository()
            .unwrap(),
    ))
    .await
    .unwrap();
    let index = format!("{name}-data");
    index_documents(&es, &index, 3).await;
    let snapshot = format!("{name}-snap");
    take_snapshot(&es, &name, &snapshot, &index).await;
    es.delete_index(&index).await.unwrap();
    assert_eq!(es.restoring(&name, &snapshot).await.unwrap(), 0);
    // A shard that may live on no node: the restore stays accepted, no recovery runs.
    let body = serde_json::json!({
        "indices": index,
        "index_settings": {"index.routing.allocation.require._name": "no-such-node"},
    });
    es.restore_snapshot(&name, &snapshot, &body).await.unwrap();
    assert_eq!(es.restoring(&name, &snapshot).await.unwrap(), 1);
    assert_eq!(es.restoring(&name, "another").await.unwrap(), 0);
    assert!(
        es.recovery("_all", true)
            .await
            .unwrap()
            .shards
            .iter()
            .all(|s| s.index != index),
        "no recovery listed for the unplaced shard"
    );
    es.delete_index(&index).await.unwrap();
    assert_eq!(es.restoring(&name, &snapshot).await.unwrap(), 0);
}
