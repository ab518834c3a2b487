//! An aggregated API whose APIService is not Available (its backend has no endpoints): its
//! objects cannot be read, so a backup says so and is PartiallyFailed. Alone in its test
//! binary: while the APIService exists, every backup of the cluster is partial.

mod common;

use backup_core::cluster::ResourceStore;
use common::local_repo::{LocalRepo, json_of};
use common::{cluster, reference, text};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn an_unavailable_aggregated_api_makes_the_backup_partial_and_names_it() {
    let c = cluster().await;
    let ns = backup_testing::unique_name("rw-aggregated");
    let group = format!("{ns}.example.com");
    let local = LocalRepo::new();
    c.apply(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        true,
    )
    .await
    .unwrap();
    c.apply(&json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "metrics", "namespace": ns},
        "spec": {"selector": {"app": "nothing-runs-this"}, "ports": [{"port": 443}]}}), true)
        .await
        .unwrap();
    let api_service = reference(
        "apiregistration.k8s.io/v1",
        "APIService",
        None,
        &format!("v1alpha1.{group}"),
    );
    c.apply(
        &json!({"apiVersion": api_service.api_version, "kind": api_service.kind,
        "metadata": {"name": api_service.name},
        "spec": {"group": group, "version": "v1alpha1", "insecureSkipTLSVerify": true,
                 "groupPriorityMinimum": 100, "versionPriority": 10,
                 "service": {"namespace": ns, "name": "metrics", "port": 443}}}),
        true,
    )
    .await
    .unwrap();
    let mut unavailable = false;
    for _ in 0..300 {
        let live = c.get(&api_service).await.unwrap().unwrap();
        if live["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Available" && c["status"] == "False")
        {
            unavailable = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let backup = |extra: &[&str]| {
        let mut args = vec![
            "backup",
            "cluster",
            "--repo",
            local.repo(),
            "--include-namespaces",
            &ns,
        ];
        args.extend_from_slice(extra);
        local.kbackup(&args)
    };
    let partial = backup(&[]);
    let described = json_of(&local.describe_latest());
    let misspelt = backup(&["--include-resources", "metricz"]);
    c.delete(&api_service).await.unwrap();
    c.delete(&reference("v1", "Namespace", None, &ns))
        .await
        .unwrap();

    assert!(
        unavailable,
        "the API server marks the APIService unavailable"
    );
    let stderr = text(&partial.stderr);
    assert_eq!(partial.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("{group}/v1alpha1")) && stderr.contains("not available"),
        "{stderr}"
    );
    assert_eq!(described[0]["phase"], "PartiallyFailed", "{described}");
    let stderr = text(&misspelt.stderr);
    assert!(!misspelt.status.success(), "{stderr}");
    assert!(
        stderr.contains("metricz") && stderr.contains(&format!("{group}/v1alpha1")),
        "the refusal names the APIs whose types are unknown: {stderr}"
    );
}
