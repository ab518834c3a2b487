//! The planner and the restore on the in-memory cluster (the real API server is in
//! backup-cli's tests).

use super::*;
use backup_core::progress::NoProgress;
use backup_core::testing::FakeCluster;
use serde_json::json;

/// A cluster holding `shop/conf` with other data than the snapshot's.
fn with_changed_config() -> FakeCluster {
    let cluster = FakeCluster::new();
    let conf = json!({"data": {"k": "changed"}});
    cluster.insert(&record("", "ConfigMap", Some("shop"), "conf", conf).object);
    cluster
}

fn record(
    group: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    body: Value,
) -> ManifestRecord {
    let mut object = body;
    object["apiVersion"] = json!(if group.is_empty() {
        "v1".to_owned()
    } else {
        format!("{group}/v1")
    });
    object["kind"] = json!(kind);
    object["metadata"]["name"] = json!(name);
    if let Some(namespace) = namespace {
        object["metadata"]["namespace"] = json!(namespace);
    }
    ManifestRecord::sample(group, kind, namespace, name, object)
}

fn controlled_by(kind: &str, name: &str) -> Value {
    json!({"metadata": {"ownerReferences": [
        {"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "old", "controller": true}
    ]}})
}

/// A namespace `shop` with a Deployment, its ReplicaSet and Pod, the ConfigMap it mounts
/// (already in the cluster, with other data), a RoleBinding to a ClusterRole; two
/// ClusterRoles of which one is needed; a webhook configuration.
fn snapshot() -> Vec<ManifestRecord> {
    vec![
        record(
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
            None,
            "policy",
            json!({}),
        ),
        record(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            None,
            "unused",
            json!({}),
        ),
        record(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            None,
            "view",
            json!({}),
        ),
        record("", "Namespace", None, "shop", json!({})),
        record(
            "",
            "ConfigMap",
            Some("shop"),
            "conf",
            json!({"data": {"k": "backed up"}}),
        ),
        record(
            "apps",
            "Deployment",
            Some("shop"),
            "web",
            json!({"spec": {"template": {"spec": {
                "volumes": [{"configMap": {"name": "conf"}}]
            }}}}),
        ),
        record(
            "apps",
            "ReplicaSet",
            Some("shop"),
            "web-1",
            controlled_by("Deployment", "web"),
        ),
        record(
            "",
            "Pod",
            Some("shop"),
            "web-1-x",
            controlled_by("ReplicaSet", "web-1"),
        ),
        record(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            Some("shop"),
            "viewers",
            json!({"roleRef": {"kind": "ClusterRole", "name": "view"}}),
        ),
        record(
            "",
            "ConfigMap",
            Some("shop"),
            "web-settings",
            json!({"metadata": {"ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "old"}
            ]}}),
        ),
        record("", "ConfigMap", Some("elsewhere"), "other", json!({})),
    ]
}

async fn planned<'a>(
    cluster: &'a FakeCluster,
    options: RestoreOptions,
) -> ClusterRestore<'a, FakeCluster> {
    let mut planner = RestorePlanner::new(options).unwrap();
    for record in snapshot() {
        planner.add(record).unwrap();
    }
    planner.plan(cluster).await.unwrap()
}

fn shop_only() -> RestoreOptions {
    RestoreOptions {
        filter: ResourceFilter {
            include_namespaces: vec!["shop".into()],
            ..ResourceFilter::default()
        },
        ..RestoreOptions::default()
    }
}

#[tokio::test]
async fn a_plan_keeps_what_the_namespace_needs_in_dependency_order() {
    let cluster = with_changed_config();
    let plan = planned(&cluster, shop_only()).await;
    let objects: Vec<PlannedObject> = plan.objects().map(Result::unwrap).collect();
    let row = |name: &str| {
        objects
            .iter()
            .find(|o| o.object.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not planned: {objects:?}"))
    };
    let names: Vec<&str> = objects.iter().map(|o| o.object.as_str()).collect();
    assert_eq!(objects.len(), 8, "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with("unused") || n.ends_with("other") || n.ends_with("policy"))
    );
    assert_eq!((row(" shop").wave, row(" view").wave), (0, 0));
    assert_eq!(row("shop/web").wave, row("shop/conf").wave + 1);
    assert!(
        objects.windows(2).all(|w| w[0].wave <= w[1].wave),
        "in wave order"
    );
    let conf = row("shop/conf");
    assert_eq!((conf.action, conf.differs), (PlannedAction::Skip, true));
    assert_eq!(conf.reason, "exists and differs at data.k; left as it is");
    let pod = row("shop/web-1-x");
    assert_eq!(
        (pod.action, pod.reason.as_str()),
        (
            PlannedAction::Skip,
            "recreated by its controller ReplicaSet web-1"
        )
    );
    assert_eq!(
        plan.counts(),
        PlanCounts {
            create: 5,
            differ: 1,
            skip: 2,
            ..PlanCounts::default()
        }
    );
}

#[tokio::test]
async fn a_restore_creates_the_plan_and_links_owners_to_their_new_uids() {
    let cluster = FakeCluster::new();
    let plan = planned(&cluster, RestoreOptions::default()).await;
    let webhook = plan.objects().map(Result::unwrap).last().unwrap();
    assert!(
        webhook.object.contains("policy"),
        "webhooks last: {webhook:?}"
    );
    assert!(webhook.reason.starts_with("last wave"));
    let outcome = plan.execute(&NoProgress).await;
    let totals = outcome.totals();
    assert_eq!(
        (totals.created, totals.skipped, totals.failed),
        (9, 2, 0),
        "{outcome:?}"
    );
    let objects = cluster.objects();
    assert_eq!(objects.len(), 9);
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let settings = objects
        .iter()
        .find(|o| o["metadata"]["name"] == "web-settings")
        .unwrap();
    assert_eq!(
        settings["metadata"]["ownerReferences"][0]["uid"], deployment["metadata"]["uid"],
        "the owner reference points at the restored Deployment"
    );
}

#[tokio::test]
async fn a_policy_of_fail_makes_differences_conflicts_and_errors() {
    let cluster = with_changed_config();
    let plan = planned(
        &cluster,
        RestoreOptions {
            existing: ExistingPolicy::Fail,
            ..shop_only()
        },
    )
    .await;
    assert_eq!(
        (plan.counts().conflict, plan.counts().refused_differing),
        (1, 1)
    );
    let outcome = plan.execute(&NoProgress).await;
    let errors: Vec<_> = outcome
        .report
        .issues
        .iter()
        .map(|i| (i.item.as_str(), i.message.as_str()))
        .collect();
    assert_eq!(
        errors,
        [(
            "ConfigMap shop/conf",
            "exists and differs at data.k; refused by the existing-object policy"
        )]
    );
}

#[tokio::test]
async fn objects_of_a_skipped_group_and_what_they_control_are_never_restored() {
    let cluster = FakeCluster::new();
    let mut planner = RestorePlanner::new(RestoreOptions {
        skip_groups: vec!["kbackup.io".into()],
        ..shop_only()
    })
    .unwrap();
    let mut session = controlled_by("BackupSession", "nightly-1");
    session["metadata"]["ownerReferences"][0]["apiVersion"] = json!("kbackup.io/v1alpha1");
    let job = record("batch", "Job", Some("shop"), "nightly-1-repo", session);
    let mut by_job = controlled_by("Job", "nightly-1-repo");
    by_job["metadata"]["ownerReferences"][0]["apiVersion"] = json!("batch/v1");
    let pod = record("", "Pod", Some("shop"), "nightly-1-repo-x", by_job);
    for record in snapshot().into_iter().chain([
        pod,
        record(
            "kbackup.io",
            "BackupSession",
            Some("shop"),
            "nightly-1",
            json!({}),
        ),
        job,
    ]) {
        planner.add(record).unwrap();
    }
    let plan = planner.plan(&cluster).await.unwrap();
    let objects: Vec<PlannedObject> = plan.objects().map(Result::unwrap).collect();
    let row = |name: &str| objects.iter().find(|o| o.object.ends_with(name)).unwrap();
    let session = row("shop/nightly-1");
    assert_eq!(
        (session.action, session.reason.as_str()),
        (PlannedAction::Skip, "kbackup.io is never restored")
    );
    assert_eq!(row("shop/nightly-1-repo").action, PlannedAction::Skip);
    assert_eq!(row("shop/nightly-1-repo-x").action, PlannedAction::Skip);
    assert_eq!(plan.execute(&NoProgress).await.totals().created, 8 - 2);
}

#[tokio::test]
async fn a_filter_naming_no_type_of_the_snapshot_is_refused_unless_the_caller_implied_it() {
    let cluster = FakeCluster::new();
    let plan = |implied: Vec<String>| {
        let mut options = shop_only();
        options.filter.exclude_resources = vec!["persistentvolumes".into()];
        options.implied_resources = implied;
        let mut planner = RestorePlanner::new(options).unwrap();
        for record in snapshot() {
            planner.add(record).unwrap();
        }
        planner
    };
    let refused = plan(vec![]).plan(&cluster).await.err().unwrap();
    assert!(
        refused.to_string().contains("persistentvolumes"),
        "{refused}"
    );
    assert!(
        plan(vec!["persistentvolumes".into()])
            .plan(&cluster)
            .await
            .is_ok()
    );
}
