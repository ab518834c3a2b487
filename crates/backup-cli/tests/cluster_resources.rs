//! `kbackup backup cluster` / `restore cluster` / `snapshot describe` end to end on the real
//! control plane: a seeded pair of namespaces with a CRD and a custom resource, backed up into
//! a local encrypted repository, deleted, planned, restored and compared object by object.

mod common;

use backup_core::cluster::{ObjectRef, ResourceStore};
use backup_core::resources::{Cleaning, ManifestRecord, clean_object, differences};
use backup_k8s::KubeCluster;
use common::local_repo::{LocalRepo, json_of};
use common::{assert_refused, cluster, reference, text};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

struct Seeded {
    cluster: KubeCluster,
    shop: String,
    db: String,
    group: String,
    local: LocalRepo,
}

impl std::ops::Deref for Seeded {
    type Target = LocalRepo;
    fn deref(&self) -> &LocalRepo {
        &self.local
    }
}

impl Seeded {
    async fn new() -> Self {
        let cluster = cluster().await;
        let prefix = backup_testing::unique_name("cr");
        let (shop, db) = (format!("{prefix}-shop"), format!("{prefix}-db"));
        let group = format!("{prefix}.example.com");
        let seeded = Self {
            cluster,
            shop,
            db,
            group,
            local: LocalRepo::new(),
        };
        seeded.apply(json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("widgets.{}", seeded.group)},
            "spec": {"group": seeded.group, "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                                   "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})).await;
        seeded.wait_established().await;
        let (shop, db) = (seeded.shop.clone(), seeded.db.clone());
        for ns in [&shop, &db] {
            seeded
                .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
                .await;
        }
        for object in [
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf", "namespace": shop}, "data": {"a": "1"}}),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": shop}, "stringData": {"password": "s3cret"}}),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web", "namespace": shop}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "reader", "namespace": shop},
                   "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "reader", "namespace": shop},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
                   "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": shop}]}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": shop},
                   "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"serviceAccountName": "web",
                                "containers": [{"name": "web", "image": "nginx", "envFrom": [{"configMapRef": {"name": "conf"}}, {"secretRef": {"name": "creds"}}]}]}}}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": shop},
                   "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
            json!({"apiVersion": format!("{}/v1", seeded.group), "kind": "Widget", "metadata": {"name": "w1", "namespace": shop}, "spec": {"size": 3}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "db-conf", "namespace": db}, "data": {"pool": "10"}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": db},
                   "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]}}),
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": db},
                   "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres"}]}}}}),
        ] {
            seeded.apply(object).await;
        }
        // The Widget's status (a status subresource) and a ConfigMap it owns, not as controller.
        let widget = reference(&format!("{}/v1", seeded.group), "Widget", Some(&shop), "w1");
        seeded
            .cluster
            .apply_status(&json!({"apiVersion": widget.api_version, "kind": "Widget",
                "metadata": {"name": "w1", "namespace": shop}, "status": {"ready": true}}))
            .await
            .unwrap();
        let uid = seeded.cluster.get(&widget).await.unwrap().unwrap()["metadata"]["uid"].clone();
        seeded.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w1-data", "namespace": shop,
            "ownerReferences": [{"apiVersion": widget.api_version, "kind": "Widget", "name": "w1", "uid": uid}]},
            "data": {"owned": "yes"}})).await;
        seeded
    }

    async fn apply(&self, object: Value) {
        self.cluster.apply(&object, true).await.unwrap();
    }

    fn crd(&self) -> ObjectRef {
        reference(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            &format!("widgets.{}", self.group),
        )
    }

    async fn wait_established(&self) {
        for _ in 0..100 {
            if let Some(crd) = self.cluster.get(&self.crd()).await.unwrap()
                && crd["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the CRD was not established");
    }

    /// Backs up, failing the test with kbackup's own words when it does not succeed.
    fn backed_up(&self, namespaces: &str) {
        let out = self.backup(namespaces);
        assert!(out.status.success(), "backup failed: {}", text(&out.stderr));
    }

    fn backup(&self, namespaces: &str) -> Output {
        self.kbackup(&[
            "backup",
            "cluster",
            "--repo",
            self.repo(),
            "--include-namespaces",
            namespaces,
        ])
    }

    async fn delete_and_wait(&self, objects: &[ObjectRef]) {
        common::delete_and_wait(&self.cluster, objects).await;
    }

    fn namespaces(&self) -> Vec<ObjectRef> {
        [&self.shop, &self.db]
            .map(|ns| reference("v1", "Namespace", None, ns))
            .to_vec()
    }

    /// Every backed-up object a restore puts back is live and equal to its backup (cleaned
    /// the same way; owner uids aside), in `mapped` namespaces.
    async fn assert_restored(&self, records: &[ManifestRecord], mapped: impl Fn(&str) -> String) {
        let mut compared = 0;
        for record in records {
            let controlled = record.object["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|o| o.iter().any(|r| r["controller"] == true));
            if controlled || record.name == "kube-root-ca.crt" {
                continue;
            }
            let mut expected = record.clone();
            let namespace = record.namespace.as_deref().map(&mapped);
            if let Some(ns) = &namespace {
                expected.object["metadata"]["namespace"] = json!(ns);
            }
            let mut reference = record.reference();
            reference.namespace = namespace;
            let mut live = self
                .cluster
                .get(&reference)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{record} was not restored"));
            clean_object(&mut live, Cleaning::default());
            // Owner uids are the restored owners' (checked by the owner test), not the old ones.
            for object in [&mut expected.object, &mut live] {
                if let Some(owners) = object
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    for owner in owners {
                        owner.as_object_mut().unwrap().remove("uid");
                    }
                }
            }
            if record.kind == "RoleBinding" {
                expected.object["subjects"][0]["namespace"] = json!(mapped(&self.shop));
            }
            let diff = differences(&expected.object, &live, 5);
            assert!(diff.is_empty(), "{record} differs at {diff:?}");
            compared += 1;
        }
        assert!(compared >= 10, "only {compared} objects compared");
    }

    async fn cleanup(&self) {
        let mut all = self.namespaces();
        all.push(self.crd());
        for object in all {
            self.cluster.delete(&object).await.unwrap();
        }
    }
}

#[tokio::test]
async fn back_up_delete_plan_restore_and_compare_object_by_object() {
    let seeded = Seeded::new().await;
    let backup = seeded.backup(&format!("{},{}", seeded.shop, seeded.db));
    assert!(backup.status.success(), "{}", text(&backup.stderr));
    let records = seeded.records();
    let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
    for kind in [
        "CustomResourceDefinition",
        "Namespace",
        "Widget",
        "Deployment",
        "Secret",
        "RoleBinding",
        "StatefulSet",
    ] {
        assert!(kinds.contains(&kind), "{kind} not backed up: {kinds:?}");
    }
    assert!(!kinds.contains(&"Event"), "events are left out");
    let describe = seeded.describe_latest();
    let rows = json_of(&describe);
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "Deployment.apps"
                && r["namespace"] == seeded.shop.as_str()
                && r["objects"] == 1)
    );

    let mut gone = seeded.namespaces();
    gone.push(seeded.crd());
    seeded.delete_and_wait(&gone).await;

    let plan = seeded.plan(&[]);
    let plan = plan.as_array().unwrap();
    let wave_of = |kind: &str| {
        plan.iter()
            .find(|o| o["kind"].as_str().unwrap().starts_with(kind))
            .unwrap_or_else(|| panic!("{kind} not planned"))["wave"]
            .as_u64()
            .unwrap()
    };
    assert!(
        wave_of("CustomResourceDefinition") < wave_of("Widget"),
        "CRD before its resources"
    );
    assert!(wave_of("Namespace") < wave_of("ConfigMap"));
    assert!(
        wave_of("ConfigMap") < wave_of("Deployment"),
        "the Deployment uses the ConfigMap"
    );
    assert!(
        plan.iter()
            .all(|o| o["action"] == "create" || o["action"] == "skip"),
        "{plan:?}"
    );
    assert!(
        seeded.cluster.get(&seeded.crd()).await.unwrap().is_none(),
        "a dry run changes nothing"
    );

    let restored = seeded.kbackup(&[
        "-o",
        "json",
        "restore",
        "cluster",
        "latest",
        "--repo",
        seeded.repo(),
    ]);
    assert!(restored.status.success(), "{}", text(&restored.stderr));
    let status = json_of(&restored);
    assert_eq!(status["phase"], "Succeeded");
    assert_eq!(status["totalComponents"], 1);
    assert_eq!(
        status["kinds"][format!("Widget.{}", seeded.group)]["created"],
        1
    );
    seeded.assert_restored(&records, str::to_owned).await;

    // Two backups around one change: the diff names exactly that object.
    seeded.backed_up(&format!("{},{}", seeded.shop, seeded.db));
    let listed =
        json_of(&seeded.kbackup(&["-o", "json", "snapshot", "list", "--repo", seeded.repo()]));
    let first = listed.as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    seeded
        .apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "db-conf", "namespace": seeded.db}, "data": {"pool": "20"}}))
        .await;
    seeded.backed_up(&format!("{},{}", seeded.shop, seeded.db));
    let diff = json_of(&seeded.kbackup(&[
        "-o",
        "json",
        "snapshot",
        "diff",
        &first[..12],
        "latest",
        "--repo",
        seeded.repo(),
    ]));
    let changed: Vec<&str> = diff
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"] == "changed")
        .map(|c| c["item"].as_str().unwrap())
        .collect();
    assert_eq!(
        changed,
        [format!("manifests: ConfigMap {}/db-conf", seeded.db)],
        "{diff}"
    );

    let again = seeded.plan(&[]);
    assert!(
        again
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["action"] == "unchanged" || o["action"] == "skip"),
        "after a restore everything is unchanged: {again}"
    );
    seeded.cleanup().await;
}

#[tokio::test]
async fn owners_are_re_linked_status_restored_on_request_and_a_yaml_tree_written() {
    let seeded = Seeded::new().await;
    let tree = seeded.home.path().join("tree");
    let out = seeded.kbackup(&[
        "backup",
        "cluster",
        "--repo",
        seeded.repo(),
        "--include-namespaces",
        &seeded.shop,
        "--keep-status",
        "--output-dir",
        tree.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml =
        std::fs::read_to_string(tree.join(&seeded.shop).join("configmaps/conf.yaml")).unwrap();
    assert!(
        yaml.contains("a: '1'") || yaml.contains("a: \"1\""),
        "{yaml}"
    );
    assert!(
        tree.join("_cluster/namespaces")
            .join(format!("{}.yaml", seeded.shop))
            .exists()
    );
    // Private: Secrets are among the files.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&tree.join(&seeded.shop)), 0o700);
    assert_eq!(
        mode(&tree.join(&seeded.shop).join("configmaps/conf.yaml")),
        0o600
    );
    seeded.delete_and_wait(&seeded.namespaces()[..1]).await;

    let out = seeded.kbackup(&[
        "restore",
        "cluster",
        "latest",
        "--repo",
        seeded.repo(),
        "--restore-status",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shop = seeded.shop.clone();
    let widget = seeded
        .cluster
        .get(&reference(
            &format!("{}/v1", seeded.group),
            "Widget",
            Some(&shop),
            "w1",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        widget["status"]["ready"], true,
        "status restored on request"
    );
    let owned = seeded
        .cluster
        .get(&reference("v1", "ConfigMap", Some(&shop), "w1-data"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        owned["metadata"]["ownerReferences"][0]["uid"], widget["metadata"]["uid"],
        "the owner reference points at the restored Widget"
    );
    seeded.cleanup().await;
}

#[tokio::test]
async fn the_repository_password_can_come_from_a_kubernetes_secret() {
    let seeded = Seeded::new().await;
    let shop = seeded.shop.clone();
    seeded
        .apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "repo-key", "namespace": shop},
                      "stringData": {"RESTIC_PASSWORD": "correct horse"}}))
        .await;
    let run = |secret: &str| {
        Command::new(env!("CARGO_BIN_EXE_kbackup"))
            .env_remove("KBACKUP_PASSWORD")
            .env("HOME", seeded.home.path())
            .arg("--kubeconfig")
            .arg(backup_testing::kubeconfig())
            .args([
                "snapshot",
                "list",
                "--repo",
                seeded.repo(),
                "--encryption-secret",
                secret,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let opened = run(&format!("{shop}/repo-key"));
    assert!(opened.status.success(), "{}", text(&opened.stderr));
    let missing = run(&format!("{shop}/no-such-secret"));
    assert_refused(&missing, "not found");
    assert!(
        !text(&opened.stderr).contains("correct horse")
            && !text(&missing.stderr).contains("correct horse")
    );
    seeded.cleanup().await;
}

#[tokio::test]
async fn restore_into_mapped_namespaces_leaves_the_originals() {
    let seeded = Seeded::new().await;
    seeded.backed_up(&seeded.shop);
    let records = seeded.records();
    let copy = format!("{}-copy", seeded.shop);
    let mapping = format!("{}:{copy}", seeded.shop);
    let out = seeded.kbackup(&[
        "-o",
        "json",
        "restore",
        "cluster",
        "latest",
        "--repo",
        seeded.repo(),
        "--include-namespaces",
        &seeded.shop,
        "--namespace-mapping",
        &mapping,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shop = seeded.shop.clone();
    let target = copy.clone();
    seeded
        .assert_restored(&records, move |ns| {
            if ns == shop {
                target.clone()
            } else {
                ns.to_owned()
            }
        })
        .await;
    let original = seeded
        .cluster
        .get(&reference("v1", "ConfigMap", Some(&seeded.shop), "conf"))
        .await
        .unwrap();
    assert!(original.is_some(), "the original namespace is untouched");
    seeded
        .cluster
        .delete(&reference("v1", "Namespace", None, &copy))
        .await
        .unwrap();
    seeded.cleanup().await;
}

#[tokio::test]
async fn existing_objects_follow_the_policy() {
    let seeded = Seeded::new().await;
    let missing = format!("{}-missing", seeded.db);
    let out = seeded.backup(&format!("{},{missing}", seeded.shop));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("namespace {missing}: no objects backed up")),
        "a named namespace that yields nothing is pointed out: {}",
        text(&out.stderr)
    );
    let shop = seeded.shop.clone();
    seeded.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf", "namespace": shop}, "data": {"a": "2"}})).await;
    // Another writer adds a key and a label (fields kbackup never owned).
    common::kubectl(
        &[
            "-n",
            &shop,
            "patch",
            "configmap",
            "conf",
            "--type",
            "merge",
            "-p",
            r#"{"metadata": {"labels": {"edited": "yes"}}, "data": {"b": "added"}}"#,
        ],
        None,
    );
    seeded
        .delete_and_wait(&[reference("v1", "Secret", Some(&shop), "creds")])
        .await;
    let conf = || async {
        seeded
            .cluster
            .get(&reference("v1", "ConfigMap", Some(&shop), "conf"))
            .await
            .unwrap()
            .unwrap()["data"]["a"]
            .clone()
    };

    let plan = seeded.plan(&["--existing", "update"]);
    let row = |name: &str| {
        plan.as_array()
            .unwrap()
            .iter()
            .find(|o| o["object"].as_str().unwrap().ends_with(name))
            .unwrap()
            .clone()
    };
    assert_eq!(row("/conf")["action"], "update");
    assert!(row("/conf")["reason"].as_str().unwrap().contains("data.a"));
    assert_eq!(row("/creds")["action"], "create");

    let skip = seeded.kbackup(&["restore", "cluster", "latest", "--repo", seeded.repo()]);
    assert!(skip.status.success(), "{}", text(&skip.stderr));
    assert!(
        text(&skip.stderr).contains("1 differ"),
        "objects that differ are counted as such: {}",
        text(&skip.stderr)
    );
    assert_eq!(conf().await, "2", "skip leaves a differing object alone");
    assert!(
        seeded
            .cluster
            .get(&reference("v1", "Secret", Some(&shop), "creds"))
            .await
            .unwrap()
            .is_some(),
        "a missing object is created"
    );

    let fail = seeded.kbackup(&[
        "restore",
        "cluster",
        "latest",
        "--repo",
        seeded.repo(),
        "--existing",
        "fail",
    ]);
    assert_eq!(fail.status.code(), Some(3), "{}", text(&fail.stderr));
    assert!(text(&fail.stderr).contains("conf") && text(&fail.stderr).contains("--existing fail"));
    assert_eq!(conf().await, "2");

    let update = seeded.kbackup(&[
        "-y",
        "restore",
        "cluster",
        "latest",
        "--repo",
        seeded.repo(),
        "--existing",
        "update",
    ]);
    assert!(update.status.success(), "{}", text(&update.stderr));
    assert_eq!(conf().await, "1", "update puts the backed-up content back");
    let live = seeded
        .cluster
        .get(&reference("v1", "ConfigMap", Some(&shop), "conf"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live["data"], json!({"a": "1"}), "the added key is gone");
    assert!(live["metadata"]["labels"].get("edited").is_none(), "{live}");
    let again = seeded.plan(&["--existing", "update"]);
    let conf_row = again
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"].as_str().unwrap().ends_with("/conf"))
        .unwrap();
    assert_eq!(conf_row["action"], "unchanged", "{conf_row}");
    seeded.cleanup().await;
}

#[tokio::test]
async fn a_service_account_allowed_part_of_the_cluster_gets_a_report_of_what_was_skipped() {
    let seeded = Seeded::new().await;
    let shop = seeded.shop.clone();
    for object in [
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "limited", "namespace": shop}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "limited", "namespace": shop},
               "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "limited", "namespace": shop},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "limited"},
               "subjects": [{"kind": "ServiceAccount", "name": "limited", "namespace": shop}]}),
    ] {
        seeded.apply(object).await;
    }
    let kubectl = |args: &[&str]| {
        let out = Command::new(backup_testing::kubectl())
            .arg("--kubeconfig")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let admin = backup_testing::kubeconfig();
    let token = kubectl(&[
        admin.to_str().unwrap(),
        "create",
        "token",
        "limited",
        "-n",
        &shop,
    ]);
    let limited = seeded.home.path().join("limited.kubeconfig");
    std::fs::copy(&admin, &limited).unwrap();
    let limited_path = limited.to_str().unwrap();
    kubectl(&[
        limited_path,
        "config",
        "set-credentials",
        "limited",
        &format!("--token={}", token.trim()),
    ]);
    kubectl(&[
        limited_path,
        "config",
        "set-context",
        "--current",
        "--user=limited",
    ]);

    let out = seeded.kbackup_as(
        &limited,
        &[
            "backup",
            "cluster",
            "--repo",
            seeded.repo(),
            "--include-namespaces",
            &shop,
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("deployments") && stderr.contains("forbidden"),
        "{stderr}"
    );
    assert!(stderr.contains("PartiallyFailed"), "{stderr}");
    let describe = json_of(&seeded.describe_latest());
    let rows = describe.as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["kind"] == "ConfigMap" && r["phase"] == "PartiallyFailed"),
        "{describe}"
    );
    assert!(
        !rows.iter().any(|r| r["kind"] == "Deployment.apps"),
        "{describe}"
    );
    seeded.cleanup().await;
}

#[tokio::test]
async fn a_corrupted_snapshot_is_refused_before_anything_changes() {
    let seeded = Seeded::new().await;
    seeded.backed_up(&seeded.shop);
    seeded
        .delete_and_wait(&[reference("v1", "ConfigMap", Some(&seeded.shop), "conf")])
        .await;
    let pack = walk(&seeded.repo.join("data"))
        .into_iter()
        .next()
        .expect("a pack");
    let mut bytes = std::fs::read(&pack).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&pack, bytes).unwrap();
    let out = seeded.kbackup(&["restore", "cluster", "latest", "--repo", seeded.repo()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("pack") || stderr.contains("damaged"),
        "{stderr}"
    );
    assert!(
        seeded
            .cluster
            .get(&reference("v1", "ConfigMap", Some(&seeded.shop), "conf"))
            .await
            .unwrap()
            .is_none(),
        "nothing restored from a damaged snapshot"
    );
    seeded.cleanup().await;
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
