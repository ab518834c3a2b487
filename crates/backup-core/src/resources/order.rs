//! The order of a restore, from the objects' dependencies: a custom resource after its
//! CRD, a namespaced object after its Namespace, a workload after the ServiceAccount,
//! ConfigMaps, Secrets and claims its pods use, a binding after its role, an object after its
//! owners. Objects are restored in waves; everything in a wave may go in parallel.

use super::manifest::ManifestRecord;
use serde_json::Value;
use std::collections::BTreeSet;

/// An object's identity, across versions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// API group (`""` for core).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace of a namespaced object.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// The key of a record.
    pub fn of(record: &ManifestRecord) -> Self {
        Self::new(
            &record.group,
            &record.kind,
            record.namespace.as_deref(),
            &record.name,
        )
    }

    /// A key from its parts.
    pub fn new(group: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        Self {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_owned),
            name: name.into(),
        }
    }
}

/// `Kind[.group]`, as people read a type.
pub fn kind_name(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    }
}

/// Writes `Kind[.group] [namespace/]name`, as people read an object.
pub(crate) fn write_object(
    f: &mut std::fmt::Formatter<'_>,
    group: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> std::fmt::Result {
    let dot = if group.is_empty() { "" } else { "." };
    match namespace {
        Some(ns) => write!(f, "{kind}{dot}{group} {ns}/{name}"),
        None => write!(f, "{kind}{dot}{group} {name}"),
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_object(
            f,
            &self.group,
            &self.kind,
            self.namespace.as_deref(),
            &self.name,
        )
    }
}

/// The key of the object an owner reference points at (owners live in their dependent's
/// namespace, or none).
pub fn owner_key(owner: &Value, namespace: Option<&str>) -> Option<ObjectKey> {
    let group = owner["apiVersion"]
        .as_str()?
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or("");
    Some(ObjectKey::new(
        group,
        owner["kind"].as_str()?,
        namespace,
        owner["name"].as_str()?,
    ))
}

/// The pod spec inside a workload (or the Pod's own).
fn pod_spec<'a>(kind: &str, object: &'a Value) -> Option<&'a Value> {
    let spec = &object["spec"];
    let found = match kind {
        "Pod" => spec,
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => &spec["template"]["spec"],
        "CronJob" => &spec["jobTemplate"]["spec"]["template"]["spec"],
        _ => return None,
    };
    found.is_object().then_some(found)
}

fn strings<'a>(values: impl Iterator<Item = &'a Value>) -> impl Iterator<Item = &'a str> {
    values.filter_map(Value::as_str).filter(|s| !s.is_empty())
}

fn array(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

/// What must exist before the object (whether or not it is part of the restore).
pub fn dependencies(record: &ManifestRecord) -> Vec<ObjectKey> {
    let object = &record.object;
    let ns = record.namespace.as_deref();
    let mut deps = BTreeSet::new();
    let push = |deps: &mut BTreeSet<ObjectKey>, group: &str, kind: &str, name: &str| {
        deps.insert(ObjectKey::new(group, kind, ns, name));
    };
    if let Some(spec) = pod_spec(&record.kind, object) {
        for name in strings([&spec["serviceAccountName"]].into_iter()) {
            push(&mut deps, "", "ServiceAccount", name);
        }
        for volume in array(&spec["volumes"]) {
            for name in strings([&volume["configMap"]["name"]].into_iter()) {
                push(&mut deps, "", "ConfigMap", name);
            }
            for name in strings([&volume["secret"]["secretName"]].into_iter()) {
                push(&mut deps, "", "Secret", name);
            }
            for name in strings([&volume["persistentVolumeClaim"]["claimName"]].into_iter()) {
                push(&mut deps, "", "PersistentVolumeClaim", name);
            }
            for source in array(&volume["projected"]["sources"]) {
                for name in strings([&source["configMap"]["name"]].into_iter()) {
                    push(&mut deps, "", "ConfigMap", name);
                }
                for name in strings([&source["secret"]["name"]].into_iter()) {
                    push(&mut deps, "", "Secret", name);
                }
            }
        }
        for secret in array(&spec["imagePullSecrets"]) {
            for name in strings([&secret["name"]].into_iter()) {
                push(&mut deps, "", "Secret", name);
            }
        }
        let containers = array(&spec["containers"]).chain(array(&spec["initContainers"]));
        for container in containers {
            for from in array(&container["envFrom"]) {
                for name in strings([&from["configMapRef"]["name"]].into_iter()) {
                    push(&mut deps, "", "ConfigMap", name);
                }
                for name in strings([&from["secretRef"]["name"]].into_iter()) {
                    push(&mut deps, "", "Secret", name);
                }
            }
            for env in array(&container["env"]) {
                let from = &env["valueFrom"];
                for name in strings([&from["configMapKeyRef"]["name"]].into_iter()) {
                    push(&mut deps, "", "ConfigMap", name);
                }
                for name in strings([&from["secretKeyRef"]["name"]].into_iter()) {
                    push(&mut deps, "", "Secret", name);
                }
            }
        }
    }
    if record.kind == "RoleBinding" {
        for name in strings([&object["roleRef"]["name"]].into_iter()) {
            if object["roleRef"]["kind"] == "Role" {
                push(&mut deps, "rbac.authorization.k8s.io", "Role", name);
            }
        }
    }
    if matches!(record.kind.as_str(), "RoleBinding" | "ClusterRoleBinding") {
        for subject in array(&object["subjects"]) {
            if subject["kind"] == "ServiceAccount"
                && let (Some(name), Some(namespace)) = (
                    subject["name"].as_str(),
                    subject["namespace"].as_str().or(ns),
                )
            {
                deps.insert(ObjectKey::new("", "ServiceAccount", Some(namespace), name));
            }
        }
    }
    deps.extend(array(&object["metadata"]["ownerReferences"]).filter_map(|o| owner_key(o, ns)));
    deps.extend(cluster_dependencies(record));
    deps.remove(&ObjectKey::of(record));
    deps.into_iter().collect()
}

/// The cluster-scoped objects a namespaced object needs: its Namespace, the CRD of a custom
/// resource, the ClusterRole of a binding, the volume and class of a claim.
pub fn cluster_dependencies(record: &ManifestRecord) -> Vec<ObjectKey> {
    let object = &record.object;
    let mut deps = Vec::new();
    let mut cluster = |group: &str, kind: &str, name: &str| {
        if !name.is_empty() {
            deps.push(ObjectKey::new(group, kind, None, name));
        }
    };
    if let Some(ns) = &record.namespace {
        cluster("", "Namespace", ns);
    }
    // Any grouped type may be a custom resource: its CRD, when restored too, goes first.
    if !record.group.is_empty() {
        cluster(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            &format!("{}.{}", record.resource, record.group),
        );
    }
    if matches!(record.kind.as_str(), "RoleBinding" | "ClusterRoleBinding")
        && object["roleRef"]["kind"] == "ClusterRole"
    {
        cluster(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            object["roleRef"]["name"].as_str().unwrap_or_default(),
        );
    }
    if matches!(
        record.kind.as_str(),
        "PersistentVolumeClaim" | "PersistentVolume"
    ) {
        cluster(
            "storage.k8s.io",
            "StorageClass",
            object["spec"]["storageClassName"]
                .as_str()
                .unwrap_or_default(),
        );
    }
    if record.kind == "PersistentVolumeClaim" {
        cluster(
            "",
            "PersistentVolume",
            object["spec"]["volumeName"].as_str().unwrap_or_default(),
        );
    }
    deps
}

/// What a restore's objects depend on among themselves, by index (the objects are numbered
/// by the caller): four bytes per object and per dependency, whatever the objects hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyGraph {
    /// Where each object's dependencies start in `targets` (one more entry than objects).
    starts: Vec<u32>,
    targets: Vec<u32>,
}

impl Default for DependencyGraph {
    fn default() -> Self {
        Self {
            starts: vec![0],
            targets: Vec::new(),
        }
    }
}

impl DependencyGraph {
    /// Adds the next object, with the indices of the objects it depends on (objects added
    /// before or after it; repeats and the object itself are ignored when ordering).
    pub fn push(&mut self, dependencies: impl IntoIterator<Item = u32>) {
        self.targets.extend(dependencies);
        self.starts
            .push(u32::try_from(self.targets.len()).expect("fewer than 4 billion dependencies"));
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// No objects.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The objects object `i` depends on.
    pub fn dependencies(&self, i: usize) -> &[u32] {
        &self.targets[self.starts[i] as usize..self.starts[i + 1] as usize]
    }
}

/// Restore waves (indices into the graph), and what could not be ordered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestoreOrder {
    /// Waves in order; a wave's objects depend only on earlier waves.
    pub waves: Vec<Vec<u32>>,
    /// Objects in a dependency cycle, restored last (in the final wave).
    pub cycles: Vec<u32>,
}

/// A rank for display and for ties inside a wave (the order people expect).
fn rank(kind: &str) -> u8 {
    match kind {
        "CustomResourceDefinition" => 0,
        "Namespace" => 1,
        "StorageClass" | "PriorityClass" | "ClusterRole" => 2,
        "PersistentVolume" | "ClusterRoleBinding" => 3,
        "ServiceAccount" | "Secret" | "ConfigMap" | "LimitRange" | "ResourceQuota" => 4,
        "Role" | "RoleBinding" | "PersistentVolumeClaim" | "Service" => 5,
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "CronJob" | "Pod" => 6,
        _ => 7,
    }
}

/// Orders objects into waves: Kahn's algorithm on the dependencies among the objects
/// themselves (dependencies outside the set are assumed to exist). `type_of` gives an
/// object's (group, kind): inside a wave, objects go by the rank of their kind, then type,
/// then index. Objects left in a cycle go last; admission webhooks after everything.
pub fn restore_order<'a>(
    graph: &DependencyGraph,
    type_of: impl Fn(usize) -> (&'a str, &'a str),
) -> RestoreOrder {
    let count = graph.len();
    let mut waiting_on: Vec<u32> = vec![0; count];
    // Dependents, as a graph of its own: who waits on each object.
    let mut inside: Vec<u32> = Vec::new();
    let mut edges: Vec<(u32, u32)> = Vec::new();
    for (i, waiting) in waiting_on.iter_mut().enumerate() {
        inside.clear();
        inside.extend(
            graph
                .dependencies(i)
                .iter()
                .copied()
                .filter(|&d| d as usize != i && (d as usize) < count),
        );
        inside.sort_unstable();
        inside.dedup();
        *waiting = inside.len() as u32;
        edges.extend(inside.iter().map(|&d| (d, i as u32)));
    }
    edges.sort_unstable();
    let mut dependents = DependencyGraph::default();
    let mut next_edge = edges.iter().peekable();
    for i in 0..count as u32 {
        dependents.push(std::iter::from_fn(|| {
            next_edge
                .next_if(|(d, _)| *d == i)
                .map(|&(_, dependent)| dependent)
        }));
    }
    drop(edges);
    let by_rank = |wave: &mut Vec<u32>| {
        wave.sort_by_cached_key(|&i| {
            let (group, kind) = type_of(i as usize);
            (rank(kind), group, kind, i)
        })
    };
    let mut order = RestoreOrder::default();
    let mut ready: Vec<u32> = (0..count as u32)
        .filter(|&i| waiting_on[i as usize] == 0)
        .collect();
    let mut placed = 0;
    while !ready.is_empty() {
        by_rank(&mut ready);
        let mut next = Vec::new();
        for &i in &ready {
            for &d in dependents.dependencies(i as usize) {
                waiting_on[d as usize] -= 1;
                if waiting_on[d as usize] == 0 {
                    next.push(d);
                }
            }
        }
        placed += ready.len();
        order.waves.push(std::mem::replace(&mut ready, next));
    }
    if placed < count {
        let mut cycle: Vec<u32> = (0..count as u32)
            .filter(|&i| waiting_on[i as usize] > 0)
            .collect();
        by_rank(&mut cycle);
        order.cycles = cycle.clone();
        order.waves.push(cycle);
    }
    // Admission webhooks last: one restored early calls a backend that is not running yet,
    // and every later object it intercepts fails.
    let is_webhook = |i: u32| {
        let (group, kind) = type_of(i as usize);
        is_admission_webhook(group, kind)
    };
    let webhooks: Vec<u32> = (0..count as u32).filter(|&i| is_webhook(i)).collect();
    if !webhooks.is_empty() {
        for wave in &mut order.waves {
            wave.retain(|&i| !is_webhook(i));
        }
        order.waves.retain(|w| !w.is_empty());
        order.waves.push(webhooks);
    }
    order
}

/// A type of validating or mutating webhook configurations.
pub fn is_admission_webhook(group: &str, kind: &str) -> bool {
    group == "admissionregistration.k8s.io"
        && matches!(
            kind,
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(
        group: &str,
        kind: &str,
        resource: &str,
        ns: Option<&str>,
        object: Value,
    ) -> ManifestRecord {
        let mut object = object;
        object["metadata"]["name"] = json!(format!("{}-x", kind.to_lowercase()));
        ManifestRecord {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            resource: resource.into(),
            namespace: ns.map(str::to_owned),
            name: format!("{}-x", kind.to_lowercase()),
            checksum: String::new(),
            object,
        }
    }

    #[test]
    fn a_workload_depends_on_what_its_pods_use() {
        let deployment = record(
            "apps",
            "Deployment",
            "deployments",
            Some("shop"),
            json!({"spec": {"template": {"spec": {
                "serviceAccountName": "web",
                "volumes": [{"configMap": {"name": "conf"}}, {"secret": {"secretName": "tls"}}, {"persistentVolumeClaim": {"claimName": "data"}}],
                "containers": [{"envFrom": [{"secretRef": {"name": "env"}}], "env": [{"valueFrom": {"configMapKeyRef": {"name": "flags"}}}]}]
            }}}}),
        );
        let deps: Vec<String> = dependencies(&deployment)
            .iter()
            .map(|k| format!("{} {}", k.kind, k.name))
            .collect();
        for expected in [
            "ServiceAccount web",
            "ConfigMap conf",
            "Secret tls",
            "PersistentVolumeClaim data",
            "Secret env",
            "ConfigMap flags",
            "Namespace shop",
        ] {
            assert!(
                deps.contains(&expected.to_string()),
                "{expected} missing in {deps:?}"
            );
        }
    }

    #[test]
    fn custom_resources_need_their_crd_and_bindings_their_roles() {
        let widget = record("example.com", "Widget", "widgets", Some("shop"), json!({}));
        assert!(cluster_dependencies(&widget).contains(&ObjectKey::new(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            None,
            "widgets.example.com"
        )));
        let config = record("", "ConfigMap", "configmaps", Some("shop"), json!({}));
        assert_eq!(
            cluster_dependencies(&config),
            [ObjectKey::new("", "Namespace", None, "shop")],
            "a core object needs only its namespace"
        );
        let binding = record(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            "rolebindings",
            Some("shop"),
            json!({"roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "ServiceAccount", "name": "web"}]}),
        );
        let deps = dependencies(&binding);
        assert!(deps.contains(&ObjectKey::new(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            None,
            "view"
        )));
        assert!(deps.contains(&ObjectKey::new("", "ServiceAccount", Some("shop"), "web")));
    }

    /// The graph and types of objects given as keys with their dependencies.
    fn graph_of(items: &[(ObjectKey, Vec<ObjectKey>)]) -> DependencyGraph {
        let mut graph = DependencyGraph::default();
        for (_, deps) in items {
            graph.push(
                deps.iter()
                    .filter_map(|d| items.iter().position(|(k, _)| k == d))
                    .map(|i| i as u32),
            );
        }
        graph
    }

    fn order_of(items: &[(ObjectKey, Vec<ObjectKey>)]) -> RestoreOrder {
        restore_order(&graph_of(items), |i| {
            (items[i].0.group.as_str(), items[i].0.kind.as_str())
        })
    }

    #[test]
    fn waves_follow_dependencies_and_cycles_go_last() {
        let key = |kind: &str, ns: Option<&str>, name: &str| ObjectKey::new("", kind, ns, name);
        let crd = ObjectKey::new(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            None,
            "widgets.example.com",
        );
        let items = vec![
            (
                key("Deployment", Some("a"), "web"),
                vec![
                    key("Namespace", None, "a"),
                    key("ConfigMap", Some("a"), "conf"),
                    key("ConfigMap", Some("a"), "conf"),
                ],
            ),
            (
                key("ConfigMap", Some("a"), "conf"),
                vec![
                    key("Namespace", None, "a"),
                    key("ConfigMap", Some("a"), "conf"),
                ],
            ),
            (key("Namespace", None, "a"), vec![]),
            (
                ObjectKey::new("example.com", "Widget", Some("a"), "w"),
                vec![crd.clone(), key("Namespace", None, "a")],
            ),
            (crd, vec![]),
            (
                key("Secret", Some("a"), "outside"),
                vec![key("Namespace", None, "elsewhere")],
            ),
            (key("X", None, "p"), vec![key("X", None, "q")]),
            (key("X", None, "q"), vec![key("X", None, "p")]),
        ];
        let order = order_of(&items);
        let names: Vec<Vec<&str>> = order
            .waves
            .iter()
            .map(|w| {
                w.iter()
                    .map(|&i| items[i as usize].0.kind.as_str())
                    .collect()
            })
            .collect();
        assert_eq!(
            names,
            [
                vec!["CustomResourceDefinition", "Namespace", "Secret"],
                vec!["ConfigMap", "Widget"],
                vec!["Deployment"],
                vec!["X", "X"],
            ]
        );
        assert_eq!(order.cycles, [6, 7]);
    }

    #[test]
    fn dependencies_out_of_range_are_ignored() {
        let mut graph = DependencyGraph::default();
        graph.push([5, 0]);
        graph.push([0]);
        assert_eq!(graph.len(), 2);
        let order = restore_order(&graph, |_| ("", "ConfigMap"));
        assert_eq!(order.waves, [vec![0], vec![1]]);
    }

    #[test]
    fn admission_webhooks_go_after_everything_they_could_intercept() {
        let hook = ObjectKey::new(
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
            None,
            "policy",
        );
        let namespace = ObjectKey::new("", "Namespace", None, "a");
        let items = vec![
            (hook.clone(), vec![]),
            (namespace.clone(), vec![]),
            (
                ObjectKey::new("", "ConfigMap", Some("a"), "c"),
                vec![namespace],
            ),
        ];
        let order = order_of(&items);
        assert_eq!(order.waves, [vec![1], vec![2], vec![0]]);
        assert!(is_admission_webhook(&hook.group, &hook.kind));
    }
}
