//! What a volume backup works on: workloads, and the claims their pods mount.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kinds of workloads whose volumes are backed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum VolumeWorkloadKind {
    /// apps/v1 Deployment (its pods through their ReplicaSet).
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// A pod no controller owns.
    Pod,
}

impl VolumeWorkloadKind {
    /// Parses a kind as users type it (`deployment`, `deploy`, `StatefulSet`, `sts`, ...).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "deployment" | "deployments" | "deploy" => Some(Self::Deployment),
            "statefulset" | "statefulsets" | "sts" => Some(Self::StatefulSet),
            "daemonset" | "daemonsets" | "ds" => Some(Self::DaemonSet),
            "pod" | "pods" | "po" => Some(Self::Pod),
            _ => None,
        }
    }

    /// The lower-case name used in component names (`statefulset`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "deployment",
            Self::StatefulSet => "statefulset",
            Self::DaemonSet => "daemonset",
            Self::Pod => "pod",
        }
    }
}

/// A workload: its kind and name (in the namespace of the request).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkloadRef {
    /// Its kind.
    pub kind: VolumeWorkloadKind,
    /// Its name.
    pub name: String,
}

impl WorkloadRef {
    /// Parses `KIND/NAME`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (kind, name) = text
            .split_once('/')
            .ok_or_else(|| format!("'{text}' is not KIND/NAME"))?;
        let kind = VolumeWorkloadKind::parse(kind)
            .ok_or_else(|| format!("'{kind}' is not deployment, statefulset, daemonset or pod"))?;
        if name.is_empty() || name.contains('/') {
            return Err(format!("'{text}' is not KIND/NAME"));
        }
        Ok(Self {
            kind,
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), self.name)
    }
}

/// How a claim may be mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimAccess {
    /// ReadWriteOnce: by pods of one node at a time.
    OneNode,
    /// ReadWriteMany or ReadOnlyMany: by pods of any node.
    ManyNodes,
    /// ReadWriteOncePod: by one pod only.
    OnePod,
}

impl ClaimAccess {
    /// The access a claim's `spec.accessModes` give (the widest one).
    pub fn of_modes<'a>(modes: impl IntoIterator<Item = &'a str>) -> Self {
        let modes: Vec<&str> = modes.into_iter().collect();
        if modes
            .iter()
            .any(|m| matches!(*m, "ReadWriteMany" | "ReadOnlyMany"))
        {
            Self::ManyNodes
        } else if modes.contains(&"ReadWriteOncePod") && !modes.contains(&"ReadWriteOnce") {
            Self::OnePod
        } else {
            Self::OneNode
        }
    }
}

/// One volume of one workload: what a mover backs up as one component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeTarget {
    /// The namespace.
    pub namespace: String,
    /// The workload.
    pub workload: WorkloadRef,
    /// The pod for a StatefulSet (its pods are stable and own their claims), else the claim
    /// (the pods of other workloads come and go, the claim stays).
    pub member: String,
    /// The volume's name in the pod spec.
    pub volume: String,
    /// The PersistentVolumeClaim.
    pub claim: String,
    /// The pod that mounts it now.
    pub pod: String,
    /// The node that pod runs on.
    pub node: String,
    /// How the claim may be mounted.
    pub access: ClaimAccess,
    /// The pod's tolerations (the mover joins it on its node).
    pub tolerations: serde_json::Value,
}

impl VolumeTarget {
    /// The component's name: `/<namespace>/<kind>/<workload>/<member>/<volume>` (a plain
    /// absolute path, so `restore path` of the whole snapshot lays the volumes out as a
    /// tree).
    pub fn component(&self) -> String {
        component_name(&self.namespace, &self.workload, &self.member, &self.volume)
    }
}

/// The component name of a workload's volume.
pub fn component_name(
    namespace: &str,
    workload: &WorkloadRef,
    member: &str,
    volume: &str,
) -> String {
    format!(
        "/{namespace}/{}/{}/{member}/{volume}",
        workload.kind.as_str(),
        workload.name
    )
}

/// Whether a component of a volume snapshot is one of those asked for: its full name, or
/// its member (`db-0`: seed 004's per-pod components), or `member/volume`.
pub fn component_matches(component: &str, wanted: &str) -> bool {
    let wanted = wanted.trim_matches('/');
    let parts: Vec<&str> = component.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        [_, _, _, member, volume] => {
            component.trim_start_matches('/') == wanted
                || *member == wanted
                || format!("{member}/{volume}") == wanted
        }
        _ => component.trim_start_matches('/') == wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_parse_as_users_type_them() {
        let sts = WorkloadRef::parse("sts/db").unwrap();
        assert_eq!(sts.kind, VolumeWorkloadKind::StatefulSet);
        assert_eq!(sts.to_string(), "statefulset/db");
        assert_eq!(
            WorkloadRef::parse("Deployment/web").unwrap().kind,
            VolumeWorkloadKind::Deployment
        );
        for bad in ["db", "job/x", "sts/", "sts/a/b"] {
            assert!(WorkloadRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn access_is_the_widest_mode() {
        assert_eq!(
            ClaimAccess::of_modes(["ReadWriteOnce"]),
            ClaimAccess::OneNode
        );
        assert_eq!(
            ClaimAccess::of_modes(["ReadWriteOnce", "ReadWriteMany"]),
            ClaimAccess::ManyNodes
        );
        assert_eq!(
            ClaimAccess::of_modes(["ReadWriteOncePod"]),
            ClaimAccess::OnePod
        );
        assert_eq!(ClaimAccess::of_modes([]), ClaimAccess::OneNode);
    }

    #[test]
    fn components_match_by_name_member_or_member_and_volume() {
        let sts = WorkloadRef::parse("sts/db").unwrap();
        let name = component_name("demo", &sts, "db-1", "data");
        assert_eq!(name, "/demo/statefulset/db/db-1/data");
        assert!(component_matches(&name, "db-1"));
        assert!(component_matches(&name, "db-1/data"));
        assert!(component_matches(&name, "demo/statefulset/db/db-1/data"));
        assert!(component_matches(&name, &name));
        assert!(!component_matches(&name, "db-0"));
        assert!(!component_matches(&name, "data"));
    }
}
