//! Objects the cluster makes and keeps by itself: left out of backups by default, never
//! restored (a restored copy fights the component that owns it, or is a stale duplicate).

use super::manifest::ManifestRecord;
use serde_json::Value;

fn label<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object["metadata"]["labels"][name].as_str()
}

fn annotation<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][name].as_str()
}

/// Why an object is the cluster's own (`None`: it is the user's). Left out of backups unless
/// its type is named in the resource filter.
pub fn managed_by_cluster(record: &ManifestRecord) -> Option<&'static str> {
    let object = &record.object;
    match (record.group.as_str(), record.kind.as_str()) {
        ("networking.k8s.io", "IPAddress") => {
            Some("the API server's record of an allocated Service IP: it makes its own")
        }
        ("networking.k8s.io", "ServiceCIDR") if record.name == "kubernetes" => {
            Some("the API server's default Service range, made at start")
        }
        ("apiregistration.k8s.io", "APIService")
            if label(object, "kube-aggregator.kubernetes.io/automanaged").is_some() =>
        {
            Some("registered by the API server for a built-in group or a CRD")
        }
        ("flowcontrol.apiserver.k8s.io", "FlowSchema" | "PriorityLevelConfiguration")
            if annotation(object, "apf.kubernetes.io/autoupdate-spec") == Some("true") =>
        {
            Some("a default of API priority and fairness, kept current by the API server")
        }
        (
            "rbac.authorization.k8s.io",
            "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding",
        ) if annotation(object, "rbac.authorization.kubernetes.io/autoupdate") == Some("true") => {
            Some("a bootstrap RBAC object the API server reconciles at every start")
        }
        ("", "Service")
            if record.name == "kubernetes" && record.namespace.as_deref() == Some("default") =>
        {
            Some("the API server's own Service")
        }
        _ => None,
    }
}

/// Why an object is never restored: the cluster's own, objects every namespace gets by
/// itself, and the pods of Jobs (a restored Job runs its own pods).
pub fn restore_skip_reason(record: &ManifestRecord) -> Option<&'static str> {
    if let Some(reason) = managed_by_cluster(record) {
        return Some(reason);
    }
    let object = &record.object;
    match (record.kind.as_str(), record.name.as_str()) {
        ("ConfigMap", "kube-root-ca.crt") => {
            Some("published in every namespace by the root CA controller")
        }
        ("Secret", _) if object["type"] == "kubernetes.io/service-account-token" => {
            Some("a service account token: the token controller issues a new one")
        }
        ("Pod", _)
            if object["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["kind"] == "Job" && o["controller"] == true) =>
        {
            Some("a Job's pod: a restored Job starts its own")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(
        group: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
        object: Value,
    ) -> ManifestRecord {
        ManifestRecord::sample(group, kind, ns, name, object)
    }

    #[test]
    fn the_cluster_s_own_objects_are_recognised() {
        let ip = record(
            "networking.k8s.io",
            "IPAddress",
            None,
            "10.0.0.1",
            json!({}),
        );
        assert!(managed_by_cluster(&ip).is_some());
        let automanaged = record(
            "apiregistration.k8s.io",
            "APIService",
            None,
            "v1.apps",
            json!({"metadata": {"labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}}}),
        );
        assert!(managed_by_cluster(&automanaged).is_some());
        let aggregated = record(
            "apiregistration.k8s.io",
            "APIService",
            None,
            "v1.metrics",
            json!({}),
        );
        assert!(
            managed_by_cluster(&aggregated).is_none(),
            "a user's aggregated API"
        );
        let bootstrap = record(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            None,
            "admin",
            json!({"metadata": {"annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}}}),
        );
        assert!(managed_by_cluster(&bootstrap).is_some());
        let pinned = record(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            None,
            "edit",
            json!({"metadata": {"annotations": {"rbac.authorization.kubernetes.io/autoupdate": "false"}}}),
        );
        assert!(
            managed_by_cluster(&pinned).is_none(),
            "one the user took over"
        );
        let service = record("", "Service", Some("default"), "kubernetes", json!({}));
        assert!(managed_by_cluster(&service).is_some());
        let elsewhere = record("", "Service", Some("shop"), "kubernetes", json!({}));
        assert!(managed_by_cluster(&elsewhere).is_none());
    }

    #[test]
    fn restores_leave_out_what_is_made_again() {
        let root = record("", "ConfigMap", Some("shop"), "kube-root-ca.crt", json!({}));
        assert!(restore_skip_reason(&root).is_some());
        let token = record(
            "",
            "Secret",
            Some("shop"),
            "t",
            json!({"type": "kubernetes.io/service-account-token"}),
        );
        assert!(restore_skip_reason(&token).is_some());
        let job_pod = record(
            "",
            "Pod",
            Some("shop"),
            "migrate-x",
            json!({"metadata": {"ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "migrate", "controller": true}]}}),
        );
        assert_eq!(
            restore_skip_reason(&job_pod),
            Some("a Job's pod: a restored Job starts its own")
        );
        let bare = record("", "Pod", Some("shop"), "debug", json!({}));
        assert!(restore_skip_reason(&bare).is_none());
    }
}
