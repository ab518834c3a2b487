//! The chart's ClusterRole holds every rule the operator grants the accounts it makes for a
//! BackupConfiguration or RestoreSession: Kubernetes refuses a Role that grants what its maker does not hold,
//! and a configuration whose account cannot be made never runs.

use backup_k8s::rbac::Family;
use serde_json::Value;

/// The families an account of a configuration can get (`trigger`, and a `backup` account's
/// for each task), and a RestoreSession's account (manifests and volumes restored).
const GRANTED: [Family; 6] = [
    Family::Trigger,
    Family::ClusterRestore,
    Family::ClusterBackup,
    Family::Volumes,
    Family::DataStores,
    Family::Elasticsearch,
];

#[test]
fn the_chart_holds_every_rule_the_operator_grants() {
    let template = include_str!("../../../charts/kbackup/templates/rbac.yaml");
    let cluster_role: String = template
        .split("\n---")
        .next()
        .unwrap()
        .lines()
        .filter(|line| !line.contains("{{"))
        .collect::<Vec<_>>()
        .join("\n");
    let role: Value = serde_saphyr::from_str(&cluster_role).unwrap();
    let rules = role["rules"].as_array().unwrap();
    let holds = |group: &str, resource: &str, verb: &str| {
        let has = |list: &Value, wanted: &str| {
            list.as_array()
                .unwrap()
                .iter()
                .any(|v| v == wanted || v == "*")
        };
        rules.iter().any(|rule| {
            has(&rule["apiGroups"], group)
                && has(&rule["resources"], resource)
                && has(&rule["verbs"], verb)
        })
    };
    let mut missing = Vec::new();
    for family in GRANTED {
        for rule in family.rules() {
            for group in rule.api_groups {
                for resource in rule.resources {
                    for verb in rule.verbs {
                        if !holds(group, resource, verb) {
                            missing.push(format!("{}: {group}/{resource} {verb}", family.name()));
                        }
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "the chart lacks {missing:?}");
}
