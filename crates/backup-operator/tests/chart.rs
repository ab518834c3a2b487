//! The Helm chart with the real helm client: installed into the test cluster (its operator
//! pod running on the real node backs up a namespace), upgraded, and uninstalled leaving the
//! custom resource definitions, the kbackup.io objects and the data in place.

mod common;

use backup_testing::{TestNamespace, helm, kubeconfig, real_node, s3, unique_name};
use common::{
    WAIT, declarations, ended, install_definitions, items, object, trigger_when_idle, wait_for,
};
use std::path::Path;
use std::process::Command;

fn run_helm(args: &[&str]) -> String {
    let output = Command::new(helm())
        .args(args)
        .env("KUBECONFIG", kubeconfig())
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("kbackup-helm-cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("kbackup-helm-config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("kbackup-helm-data"),
        )
        .output()
        .expect("running helm");
    assert!(
        output.status.success(),
        "helm {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_chart_installs_upgrades_and_uninstalls_leaving_definitions_objects_and_data() {
    let node = real_node();
    install_definitions();
    let ns = TestNamespace::create("kbackup-chart");
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/kbackup");
    let chart = chart.to_str().unwrap();
    let (repository, tag) = node.kbackup_image.rsplit_once(':').unwrap();
    let placement = [
        format!("image.repository={repository}"),
        format!("image.tag={tag}"),
        format!("watchNamespaces={{{}}}", ns.name),
        format!("jobs.tolerationKeys={{{}}}", node.taint),
    ];
    let selector = format!(r#"{{"kubernetes.io/hostname":"{}"}}"#, node.name);
    let tolerations = format!(r#"[{{"key":"{}","operator":"Exists"}}]"#, node.taint);
    let mut install = vec![
        "install",
        "kbackup",
        chart,
        "--namespace",
        &ns.name,
        "--wait",
        "--timeout",
        "180s",
    ];
    for value in &placement {
        install.extend(["--set", value]);
    }
    let node_selector = format!("nodeSelector={selector}");
    let job_selector = format!("jobs.nodeSelector={selector}");
    let toleration_json = format!("tolerations={tolerations}");
    install.extend([
        "--set-json",
        &node_selector,
        "--set-json",
        &job_selector,
        "--set-json",
        &toleration_json,
    ]);
    run_helm(&install);

    // The operator pod runs on the real node and is ready.
    let pods = items(&ns, "pods");
    let operator = pods
        .iter()
        .find(|p| p["metadata"]["labels"]["app.kubernetes.io/name"] == "kbackup-operator")
        .expect("the operator pod");
    assert_eq!(operator["spec"]["nodeName"], node.name.as_str());
    assert_eq!(operator["status"]["phase"], "Running");

    // It backs up the namespace.
    let bucket = unique_name("chart");
    s3().create_bucket(&bucket);
    ns.apply(&declarations(&ns, &node, &bucket));
    wait_for("storage minio to be Ready", WAIT, || {
        (object(&ns, "backupstorage", "minio")["status"]["phase"] == "Ready").then_some(())
    });
    ns.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=120s",
    ]);
    let session = trigger_when_idle(&ns, "web", "in-cluster-1");
    let status = ended(&ns, &session);
    assert_eq!(status["phase"], "Succeeded", "{status}");

    // Upgraded: the new settings roll out.
    let mut upgrade = vec![
        "upgrade",
        "kbackup",
        chart,
        "--namespace",
        &ns.name,
        "--reuse-values",
        "--set",
        "logLevel=debug",
        "--wait",
        "--timeout",
        "180s",
    ];
    upgrade.extend(["--set", "metrics.port=9090"]);
    run_helm(&upgrade);
    let deployment = object(&ns, "deployment", "kbackup-operator");
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(
        args.contains("--log-level=debug") && args.contains("0.0.0.0:9090"),
        "{args}"
    );
    assert_eq!(deployment["status"]["readyReplicas"], 1, "{deployment}");

    // Uninstalled: the operator goes; definitions, objects and data stay.
    run_helm(&["uninstall", "kbackup", "--namespace", &ns.name, "--wait"]);
    assert!(
        !items(&ns, "deployments")
            .iter()
            .any(|d| d["metadata"]["name"] == "kbackup-operator"),
        "the operator is gone"
    );
    let crds = Command::new(backup_testing::kubectl())
        .args([
            "get",
            "crd",
            "backupsessions.kbackup.io",
            "snapshots.kbackup.io",
        ])
        .env("KUBECONFIG", kubeconfig())
        .output()
        .unwrap();
    assert!(crds.status.success(), "the definitions stay");
    assert_eq!(
        object(&ns, "snapshot", &format!("{session}-apps"))["status"]["phase"],
        "Succeeded"
    );
    let keys = s3().keys(&bucket, "apps/");
    assert!(
        keys.iter().any(|k| k.starts_with("apps/snapshots/")),
        "{keys:?}"
    );
}
