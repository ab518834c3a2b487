//! `backup cluster` / `restore cluster` on objects shaped like those of published install
//! manifests: a CRD group whose types are served in different versions, objects applied with
//! kubectl, a Job and its pod, an admission webhook whose backend has no endpoints, an object
//! held by a finalizer, NodePort Services cloned beside their originals, and the API
//! server's own objects.

mod common;

use backup_core::cluster::{ObjectRef, ResourceStore};
use backup_core::resources::{LAST_APPLIED, ManifestRecord};
use backup_k8s::KubeCluster;
use common::local_repo::LocalRepo;
use common::{cluster, kubectl, kubectl_output, reference, text};
use serde_json::{Value, json};
use std::time::Duration;

/// A ConfigMap as a user applies it with kubectl.
const APPLIED: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  k: v\n";

/// A namespace and a CRD group of one test's own, with a repository.
struct Site {
    cluster: KubeCluster,
    prefix: String,
    ns: String,
    group: String,
    local: LocalRepo,
}

impl std::ops::Deref for Site {
    type Target = LocalRepo;
    fn deref(&self) -> &LocalRepo {
        &self.local
    }
}

fn namespace_ref(name: &str) -> ObjectRef {
    reference("v1", "Namespace", None, name)
}

impl Site {
    async fn new(name: &str) -> Self {
        let prefix = backup_testing::unique_name(name);
        let site = Self {
            cluster: cluster().await,
            ns: prefix.clone(),
            group: format!("{prefix}.example.com"),
            prefix,
            local: LocalRepo::new(),
        };
        site.apply(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": site.ns, "labels": {"test": site.prefix}}}))
            .await;
        site
    }

    async fn apply(&self, object: Value) -> Value {
        self.cluster.apply(&object, true).await.unwrap()
    }

    /// A namespaced CRD of the site's group served in `versions` (the first one stored), with a
    /// schema that needs no conversion.
    async fn crd(&self, plural: &str, kind: &str, versions: &[&str]) -> ObjectRef {
        let versions: Vec<Value> = versions
            .iter()
            .enumerate()
            .map(|(i, v)| json!({"name": v, "served": true, "storage": i == 0,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}))
            .collect();
        let name = format!("{plural}.{}", self.group);
        self.apply(
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name, "labels": {"test": self.prefix}},
            "spec": {"group": self.group, "scope": "Namespaced",
                     "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind},
                     "versions": versions}}),
        )
        .await;
        let crd = reference(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            &name,
        );
        for _ in 0..100 {
            let live = self.cluster.get(&crd).await.unwrap().unwrap();
            if live["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
            {
                // Discovery shows the types a moment after the CRD is Established.
                tokio::time::sleep(Duration::from_millis(500)).await;
                return crd;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{name} was not established");
    }

    fn backup(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["backup", "cluster", "--repo", self.repo()];
        all.extend_from_slice(args);
        self.kbackup(&all)
    }

    fn backed_up(&self, args: &[&str]) -> Vec<ManifestRecord> {
        let out = self.backup(args);
        assert!(out.status.success(), "backup failed: {}", text(&out.stderr));
        self.records()
    }

    async fn delete_and_wait(&self, objects: &[ObjectRef]) {
        common::delete_and_wait(&self.cluster, objects).await;
    }

    async fn live(&self, object: &ObjectRef) -> Value {
        self.cluster
            .get(object)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{object} is not in the cluster"))
    }
}

fn find<'a>(records: &'a [ManifestRecord], kind: &str, name: &str) -> Option<&'a ManifestRecord> {
    records.iter().find(|r| r.kind == kind && r.name == name)
}

fn row<'a>(plan: &'a Value, suffix: &str) -> &'a Value {
    plan.as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"].as_str().unwrap().ends_with(suffix))
        .unwrap_or_else(|| panic!("no {suffix} in the plan: {plan}"))
}

#[tokio::test]
async fn types_of_every_served_version_are_backed_up_and_filters_must_name_real_types() {
    let site = Site::new("rw-versions").await;
    let (ns, group) = (site.ns.clone(), site.group.clone());
    // The group's preferred version is v1 (the gadgets'); legacies are served in v1alpha1
    // only, as when one CRD of an operator moved on and another did not.
    let gadgets = site.crd("gadgets", "Gadget", &["v1", "v1beta1"]).await;
    let legacies = site.crd("legacies", "Legacy", &["v1alpha1"]).await;
    site.apply(
        json!({"apiVersion": format!("{group}/v1"), "kind": "Gadget",
        "metadata": {"name": "g1", "namespace": ns}, "spec": {"size": 1}}),
    )
    .await;
    site.apply(
        json!({"apiVersion": format!("{group}/v1beta1"), "kind": "Gadget",
        "metadata": {"name": "g2", "namespace": ns}, "spec": {"size": 2}}),
    )
    .await;
    site.apply(
        json!({"apiVersion": format!("{group}/v1alpha1"), "kind": "Legacy",
        "metadata": {"name": "l1", "namespace": ns}, "spec": {"mode": "old"}}),
    )
    .await;
    kubectl(&["-n", &ns, "apply", "-f", "-"], Some(APPLIED));

    // A misspelt type, and a type no version serves, are refused before anything is stored.
    for name in ["gadgts", "widgets.example.com"] {
        let out = site.backup(&["--include-namespaces", &ns, "--include-resources", name]);
        assert!(!out.status.success(), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(name)
                && text(&out.stderr).contains("matches no resource type"),
            "{}",
            text(&out.stderr)
        );
    }

    let only = site.backed_up(&[
        "--include-namespaces",
        &ns,
        "--include-resources",
        &format!("legacies.{group}"),
    ]);
    let legacy = find(&only, "Legacy", "l1").expect("the type served in a non-preferred version");
    assert_eq!(legacy.version, "v1alpha1");
    assert!(find(&only, "Gadget", "g1").is_none());

    let dropped = site.backed_up(&["--include-namespaces", &ns, "--drop-last-applied"]);
    let applied = find(&dropped, "ConfigMap", "applied").unwrap();
    assert!(
        applied.object["metadata"]["annotations"]
            .get(LAST_APPLIED)
            .is_none()
    );

    let records = site.backed_up(&["--include-namespaces", &ns]);
    for name in ["g1", "g2"] {
        let copies: Vec<_> = records
            .iter()
            .filter(|r| r.kind == "Gadget" && r.name == name)
            .collect();
        assert_eq!(copies.len(), 1, "{name} once, in one version");
        assert_eq!(copies[0].version, "v1", "the group's preferred version");
    }
    assert!(find(&records, "Legacy", "l1").is_some());
    let applied = find(&records, "ConfigMap", "applied").unwrap();
    assert!(
        applied.object["metadata"]["annotations"]
            .get(LAST_APPLIED)
            .is_some(),
        "kubectl's last input is kept: {}",
        applied.object
    );

    site.delete_and_wait(&[namespace_ref(&ns)]).await;
    let out = site.restore(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let l1 = site
        .live(&reference(
            &format!("{group}/v1alpha1"),
            "Legacy",
            Some(&ns),
            "l1",
        ))
        .await;
    assert_eq!(l1["spec"]["mode"], "old");
    let g2 = site
        .live(&reference(
            &format!("{group}/v1"),
            "Gadget",
            Some(&ns),
            "g2",
        ))
        .await;
    assert_eq!(g2["spec"]["size"], 2);
    let applied = site
        .live(&reference("v1", "ConfigMap", Some(&ns), "applied"))
        .await;
    assert!(
        applied["metadata"]["annotations"]
            .get(LAST_APPLIED)
            .is_some()
    );
    // kubectl apply after the restore merges against what it last applied, without a
    // warning about a missing annotation.
    let again = kubectl_output(&["-n", &ns, "apply", "-f", "-"], Some(APPLIED));
    assert!(again.status.success());
    assert!(
        !text(&again.stderr).contains("missing the kubectl.kubernetes.io/last-applied"),
        "{}",
        text(&again.stderr)
    );
    site.delete_and_wait(&[namespace_ref(&ns), gadgets, legacies])
        .await;
}

#[tokio::test]
async fn the_api_server_s_own_objects_are_left_out_unless_named() {
    let site = Site::new("rw-managed").await;
    let ns = site.ns.clone();
    site.apply(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
        "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    let all = site.backed_up(&[
        "--include-namespaces",
        &ns,
        "--include-cluster-resources",
        "true",
    ]);
    assert!(find(&all, "Service", "web").is_some());
    assert!(all.iter().all(|r| r.kind != "IPAddress"), "IP addresses");
    for record in &all {
        assert!(
            record.object["metadata"]["labels"]
                .get("kube-aggregator.kubernetes.io/automanaged")
                .is_none()
                && record.object["metadata"]["annotations"]
                    .get("rbac.authorization.kubernetes.io/autoupdate")
                    .is_none_or(|v| v != "true"),
            "{record} is the API server's"
        );
    }
    assert!(
        all.iter()
            .any(|r| r.kind == "Namespace" && r.name == "default"),
        "the user's part of the cluster is still there"
    );
    let named = site.backed_up(&[
        "--include-resources",
        "ipaddresses.networking.k8s.io",
        "--include-cluster-resources",
        "true",
    ]);
    assert!(
        named.iter().any(|r| r.kind == "IPAddress"),
        "taken when named"
    );
    // A restore of such a snapshot leaves them to the API server.
    let plan = site.plan(&[]);
    for object in plan.as_array().unwrap() {
        assert_eq!(object["action"], "skip", "{object}");
        assert!(
            object["reason"]
                .as_str()
                .unwrap()
                .contains("allocated Service IP"),
            "{object}"
        );
    }
    site.delete_and_wait(&[namespace_ref(&ns)]).await;
}

#[tokio::test]
async fn jobs_webhooks_and_finalized_objects_restore_in_a_working_order() {
    let site = Site::new("rw-order").await;
    let (ns, group, prefix) = (site.ns.clone(), site.group.clone(), site.prefix.clone());
    let labels = json!({"test": prefix});
    let gadgets = site.crd("gadgets", "Gadget", &["v1"]).await;
    site.apply(
        json!({"apiVersion": format!("{group}/v1"), "kind": "Gadget",
        "metadata": {"name": "g1", "namespace": ns, "labels": labels}, "spec": {"size": 1}}),
    )
    .await;
    let held = reference("v1", "ConfigMap", Some(&ns), "held");
    site.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "namespace": ns,
        "labels": labels, "finalizers": ["kbackup.test/keep"]}, "data": {"k": "v"}}))
        .await;
    let release = || {
        kubectl(
            &[
                "-n",
                &ns,
                "patch",
                "configmap",
                "held",
                "--type",
                "merge",
                "-p",
                r#"{"metadata": {"finalizers": null}}"#,
            ],
            None,
        )
    };
    site.apply(json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": ns, "labels": labels},
        "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": labels},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "migrate", "image": "busybox"}]}}}}))
        .await;
    let job = reference("batch/v1", "Job", Some(&ns), "migrate");
    let old_uid = site.live(&job).await["metadata"]["uid"].clone();
    let job_pod = || async {
        let pods = kubectl(
            &[
                "-n",
                &ns,
                "get",
                "pods",
                "-l",
                "job-name=migrate",
                "-o",
                "name",
            ],
            None,
        );
        pods.lines()
            .next()
            .map(|p| p.trim_start_matches("pod/").to_owned())
    };
    let mut pod = None;
    for _ in 0..300 {
        pod = job_pod().await;
        if pod.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pod = pod.expect("the Job controller made a pod");
    // An admission webhook whose backend has no endpoints, for this group's gadgets only.
    site.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "policy", "namespace": ns, "labels": labels},
        "spec": {"selector": {"app": "nothing-runs-this"}, "ports": [{"port": 443}]}}))
        .await;
    let webhook = reference(
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        None,
        &format!("{prefix}-policy"),
    );
    site.apply(json!({"apiVersion": webhook.api_version, "kind": webhook.kind,
        "metadata": {"name": webhook.name, "labels": labels},
        "webhooks": [{"name": format!("check.{group}"),
            "clientConfig": {"service": {"namespace": ns, "name": "policy", "path": "/validate", "port": 443}},
            "rules": [{"apiGroups": [group], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"], "resources": ["gadgets"]}],
            "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 2}]}))
        .await;
    let mut blocked = false;
    for _ in 0..50 {
        let attempt = site
            .cluster
            .apply(
                &json!({"apiVersion": format!("{group}/v1"), "kind": "Gadget",
            "metadata": {"name": "probe", "namespace": ns}}),
                true,
            )
            .await;
        if let Err(error) = attempt {
            assert!(
                error.to_string().contains("failed calling webhook"),
                "{error}"
            );
            blocked = true;
            break;
        }
        site.cluster
            .delete(&reference(
                &format!("{group}/v1"),
                "Gadget",
                Some(&ns),
                "probe",
            ))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(blocked, "the webhook intercepts gadgets");

    let records = site.backed_up(&["-l", &format!("test={prefix}")]);
    for (kind, name) in [
        ("Job", "migrate"),
        ("Pod", pod.as_str()),
        ("ValidatingWebhookConfiguration", webhook.name.as_str()),
        ("Gadget", "g1"),
        ("ConfigMap", "held"),
        ("CustomResourceDefinition", gadgets.name.as_str()),
    ] {
        assert!(
            find(&records, kind, name).is_some(),
            "{kind} {name} backed up"
        );
    }

    site.delete_and_wait(std::slice::from_ref(&webhook)).await;
    site.cluster.delete(&namespace_ref(&ns)).await.unwrap();
    release();
    site.delete_and_wait(&[namespace_ref(&ns), gadgets.clone()])
        .await;

    let plan = site.plan(&[]);
    let waves = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["wave"].as_u64().unwrap())
        .max()
        .unwrap();
    let hook = row(&plan, &webhook.name);
    assert_eq!(hook["wave"].as_u64(), Some(waves), "{hook}");
    assert!(
        hook["reason"]
            .as_str()
            .unwrap()
            .contains("admission webhook"),
        "{hook}"
    );
    assert!(
        plan.as_array()
            .unwrap()
            .iter()
            .filter(|o| o["object"] != hook["object"])
            .all(|o| o["wave"].as_u64() < Some(waves)),
        "alone in the last wave"
    );
    let job_pod_row = row(&plan, &format!("/{pod}"));
    assert_eq!(job_pod_row["action"], "skip");
    assert!(
        job_pod_row["reason"]
            .as_str()
            .unwrap()
            .contains("Job's pod")
    );
    assert_eq!(row(&plan, "/migrate")["action"], "create");

    let out = site.restore(&[]);
    let restored = out.status.success();
    let job_live = site.cluster.get(&job).await.unwrap();
    let held_live = site.cluster.get(&held).await.unwrap();
    let gadget = site
        .cluster
        .get(&reference(
            &format!("{group}/v1"),
            "Gadget",
            Some(&ns),
            "g1",
        ))
        .await
        .unwrap();
    let hook_live = site.cluster.get(&webhook).await.unwrap();
    site.cluster.delete(&webhook).await.unwrap();
    site.cluster.delete(&namespace_ref(&ns)).await.unwrap();
    if held_live.is_some() {
        release();
    }
    site.delete_and_wait(&[namespace_ref(&ns), gadgets]).await;

    assert!(restored, "{}", text(&out.stderr));
    let job_live = job_live.expect("the Job is restored");
    let new_uid = job_live["metadata"]["uid"].clone();
    assert_ne!(new_uid, old_uid);
    assert_eq!(
        job_live["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"], new_uid,
        "the API server generated the selector for the new Job"
    );
    assert_eq!(
        held_live.expect("the held ConfigMap is restored")["metadata"]["finalizers"],
        json!(["kbackup.test/keep"])
    );
    assert!(gadget.is_some(), "created before the webhook came back");
    assert!(hook_live.is_some(), "the webhook is restored, last");
}

#[tokio::test]
async fn a_clone_beside_the_original_gets_free_node_ports() {
    let site = Site::new("rw-ports").await;
    let ns = site.ns.clone();
    // A node port of its own (tests run side by side): the first free one from a spot that
    // depends on the name.
    let start = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        ns.hash(&mut hasher);
        30000 + (hasher.finish() % 2500) as u16
    };
    let mut port = None;
    for candidate in start..start + 200 {
        let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "nodePort": candidate}]}});
        if site.cluster.apply(&service, true).await.is_ok() {
            port = Some(candidate);
            break;
        }
    }
    let port = port.expect("a free node port");
    site.backed_up(&["--include-namespaces", &ns]);
    let copy = format!("{ns}-copy");
    let held = format!("{ns}-held");

    let mapping = format!("{ns}:{copy}");
    let plan = site.plan(&["--namespace-mapping", &mapping]);
    let web = row(&plan, &format!("{copy}/web"));
    assert_eq!(web["action"], "create", "{web}");
    assert!(web.get("conflict").is_none(), "{web}");

    let preserving = format!("{ns}:{held}");
    let plan = site.plan(&["--namespace-mapping", &preserving, "--preserve-nodeports"]);
    let web = row(&plan, &format!("{held}/web"));
    assert_eq!(web["conflict"], true, "{web}");
    let reason = web["reason"].as_str().unwrap();
    assert!(
        reason.contains(&port.to_string()) && reason.contains(&format!("{ns}/web")),
        "{reason}"
    );

    let out = site.restore(&["--namespace-mapping", &mapping]);
    let cloned = site
        .cluster
        .get(&reference("v1", "Service", Some(&copy), "web"))
        .await
        .unwrap();
    let refused = site.restore(&["--namespace-mapping", &preserving, "--preserve-nodeports"]);
    site.delete_and_wait(&[
        namespace_ref(&ns),
        namespace_ref(&copy),
        namespace_ref(&held),
    ])
    .await;

    assert!(out.status.success(), "{}", text(&out.stderr));
    let cloned_port = cloned.expect("the clone")["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .unwrap();
    assert!(
        cloned_port != u64::from(port) && cloned_port >= 30000,
        "{cloned_port}"
    );
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("already allocated"),
        "{}",
        text(&refused.stderr)
    );
}
