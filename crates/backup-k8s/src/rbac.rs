//! The least privilege each family of operations needs, as Kubernetes RBAC rules: what this
//! adapter's calls use, verb by verb. Discovery (`/api`, `/apis`) is open to every
//! authenticated user (the `system:discovery` role) and not listed.

use serde_json::{Value, json};

/// One rule: these verbs on these resources of these API groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// API groups (`""` is the core group, `"*"` every group).
    pub api_groups: &'static [&'static str],
    /// Resources, subresources as `pods/log` (`"*"` every resource).
    pub resources: &'static [&'static str],
    /// Verbs.
    pub verbs: &'static [&'static str],
}

/// A family of operations that share their permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// A repository password or storage credentials read from a Secret
    /// (`--encryption-secret`, `--storage-secret`).
    RepositorySecrets,
    /// Every resource of the cluster listed and read (backups of manifests).
    ClusterBackup,
    /// Any resource created, updated and waited for (restores of manifests).
    ClusterRestore,
    /// StackState data stores (StackGraph, settings, VictoriaMetrics): the configuration, the
    /// archives through a port-forward, workloads paused and resumed, Jobs with their
    /// ConfigMap, Secret and claim, their pods' logs.
    DataStores,
    /// StackState's Elasticsearch: the configuration, the node through a port-forward, and the
    /// workloads a restore pauses.
    Elasticsearch,
    /// Workloads' volumes backed up and restored by mover pods: pods and claims read,
    /// ReplicaSets read (to find Deployments), hooks exec'd, mover Jobs with their Secret
    /// created, followed, read and deleted, workloads scaled and their pod templates given
    /// a restore's init container.
    Volumes,
    /// A BackupConfiguration read and a BackupSession of it created (`trigger`).
    Trigger,
}

const CORE_READ: Rule = Rule {
    api_groups: &[""],
    resources: &["configmaps", "secrets", "services"],
    verbs: &["get"],
};
const PODS: Rule = Rule {
    api_groups: &[""],
    resources: &["pods"],
    verbs: &["get", "list", "watch"],
};
const PORT_FORWARD: Rule = Rule {
    api_groups: &[""],
    resources: &["pods/portforward"],
    verbs: &["get", "create"],
};
const WORKLOADS: Rule = Rule {
    api_groups: &["apps"],
    resources: &["deployments", "statefulsets"],
    verbs: &["get", "list", "patch"],
};

impl Family {
    /// Every family.
    pub const ALL: [Family; 7] = [
        Family::RepositorySecrets,
        Family::ClusterBackup,
        Family::ClusterRestore,
        Family::DataStores,
        Family::Elasticsearch,
        Family::Volumes,
        Family::Trigger,
    ];

    /// Its name, in role names (`kbackup-<name>`) and documents.
    pub fn name(self) -> &'static str {
        match self {
            Family::RepositorySecrets => "repository-secrets",
            Family::ClusterBackup => "cluster-backup",
            Family::ClusterRestore => "cluster-restore",
            Family::DataStores => "data-stores",
            Family::Elasticsearch => "elasticsearch",
            Family::Volumes => "volumes",
            Family::Trigger => "trigger",
        }
    }

    /// Whether its rules span the cluster (a ClusterRole) rather than one namespace (a Role).
    pub fn cluster_wide(self) -> bool {
        matches!(self, Family::ClusterBackup | Family::ClusterRestore)
    }

    /// The rules.
    pub fn rules(self) -> &'static [Rule] {
        match self {
            Family::RepositorySecrets => &[Rule {
                api_groups: &[""],
                resources: &["secrets"],
                verbs: &["get"],
            }],
            Family::ClusterBackup => &[Rule {
                api_groups: &["*"],
                resources: &["*"],
                verbs: &["get", "list"],
            }],
            Family::ClusterRestore => &[Rule {
                api_groups: &["*"],
                resources: &["*"],
                // escalate and bind: restoring Roles and bindings that grant more than the
                // restoring account has.
                verbs: &[
                    "get", "list", "watch", "create", "update", "patch", "escalate", "bind",
                ],
            }],
            Family::DataStores => &[
                CORE_READ,
                // Applied server-side (patch, create when absent), deleted when finalized.
                Rule {
                    api_groups: &[""],
                    resources: &["configmaps", "secrets", "persistentvolumeclaims"],
                    verbs: &["get", "create", "patch", "delete"],
                },
                PODS,
                Rule {
                    api_groups: &[""],
                    resources: &["pods/log"],
                    verbs: &["get"],
                },
                PORT_FORWARD,
                WORKLOADS,
                // Created suspended, resumed (patch) once its keys and scratch claim exist,
                // owned by it.
                Rule {
                    api_groups: &["batch"],
                    resources: &["jobs"],
                    verbs: &["get", "list", "watch", "create", "patch", "delete"],
                },
                // The installation's own backup CronJobs (settings, VictoriaMetrics), read to
                // make a Job from one.
                Rule {
                    api_groups: &["batch"],
                    resources: &["cronjobs"],
                    verbs: &["get", "list"],
                },
            ],
            Family::Elasticsearch => &[CORE_READ, PODS, PORT_FORWARD, WORKLOADS],
            Family::Trigger => &[
                Rule {
                    api_groups: &["kbackup.io"],
                    resources: &["backupconfigurations"],
                    verbs: &["get"],
                },
                Rule {
                    api_groups: &["kbackup.io"],
                    resources: &["backupsessions"],
                    verbs: &["create"],
                },
            ],
            Family::Volumes => &[
                PODS,
                Rule {
                    api_groups: &[""],
                    resources: &["pods/log", "persistentvolumeclaims"],
                    verbs: &["get"],
                },
                // An exec is a GET upgraded to a WebSocket: `get`, and `create` where the API
                // server also asks for it (AuthorizePodWebsocketUpgradeCreatePermission).
                Rule {
                    api_groups: &[""],
                    resources: &["pods/exec"],
                    verbs: &["get", "create"],
                },
                // The mover's Secret is written once, owned by its Job, and never read.
                Rule {
                    api_groups: &[""],
                    resources: &["secrets"],
                    verbs: &["create", "delete"],
                },
                Rule {
                    api_groups: &["apps"],
                    resources: &["replicasets"],
                    verbs: &["get"],
                },
                // Scaled down and back (`--quiesce scale`), and an init container added to
                // and taken out of the pod template (`restore volumes --target`).
                Rule {
                    api_groups: &["apps"],
                    resources: &["deployments", "statefulsets"],
                    verbs: &["get", "list", "patch", "update"],
                },
                // Created suspended, resumed (patch) once its Secret exists.
                Rule {
                    api_groups: &["batch"],
                    resources: &["jobs"],
                    verbs: &["get", "create", "patch", "delete"],
                },
            ],
        }
    }

    /// The Role (namespaced families, in `namespace`) or ClusterRole, named
    /// `kbackup-<name>`.
    pub fn role(self, namespace: &str) -> Value {
        let rules: Vec<Value> = self
            .rules()
            .iter()
            .map(|r| json!({"apiGroups": r.api_groups, "resources": r.resources, "verbs": r.verbs}))
            .collect();
        let mut role = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": if self.cluster_wide() { "ClusterRole" } else { "Role" },
            "metadata": {"name": format!("kbackup-{}", self.name())},
            "rules": rules,
        });
        if !self.cluster_wide() {
            role["metadata"]["namespace"] = json!(namespace);
        }
        role
    }

    /// A binding of [`Family::role`] to the ServiceAccount `account` of `namespace`.
    pub fn binding(self, namespace: &str, account: &str) -> Value {
        let name = format!("kbackup-{}", self.name());
        let (kind, role_kind) = match self.cluster_wide() {
            true => ("ClusterRoleBinding", "ClusterRole"),
            false => ("RoleBinding", "Role"),
        };
        let mut binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": format!("{name}-{account}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        });
        if !self.cluster_wide() {
            binding["metadata"]["namespace"] = json!(namespace);
        }
        binding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_families_are_roles_and_the_cluster_ones_cluster_roles() {
        for family in Family::ALL {
            let role = family.role("sts");
            let kind = role["kind"].as_str().unwrap();
            assert_eq!(kind == "ClusterRole", family.cluster_wide(), "{family:?}");
            assert_eq!(
                role["metadata"].get("namespace").is_some(),
                !family.cluster_wide()
            );
            assert!(!family.rules().is_empty());
            let binding = family.binding("sts", "backup");
            assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
            assert_eq!(binding["subjects"][0]["namespace"], "sts");
        }
        let secrets = Family::RepositorySecrets.role("ns");
        assert_eq!(secrets["rules"][0]["verbs"], json!(["get"]));
    }
}
