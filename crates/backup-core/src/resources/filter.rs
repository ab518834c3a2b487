//! Which resource types, namespaces and objects a backup takes (Velero's flag names).

use crate::cluster::ApiResourceType;

/// Resource types left out unless named in the resource filter: noise that the cluster
/// recreates or that cannot be restored meaningfully (IP addresses are the API server's
/// record of each Service's cluster IP: restored ones point at Services that no longer
/// exist, and the API server reassigns them).
pub const DEFAULT_EXCLUDED_RESOURCES: [&str; 11] = [
    "events",
    "events.events.k8s.io",
    "nodes",
    "leases.coordination.k8s.io",
    "endpoints",
    "endpointslices.discovery.k8s.io",
    "controllerrevisions.apps",
    "csinodes.storage.k8s.io",
    "volumeattachments.storage.k8s.io",
    "componentstatuses",
    "ipaddresses.networking.k8s.io",
];

/// Which cluster-scoped objects a backup takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterScope {
    /// Every selected cluster-scoped type.
    All,
    /// Only those the namespaced objects need (their Namespaces, the CRDs of their custom
    /// resources, the ClusterRoles their RoleBindings name, their PersistentVolumes and
    /// StorageClasses).
    Needed,
    /// None.
    None,
}

/// The selection of a backup or a restore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceFilter {
    /// Namespace globs to take (empty: all).
    pub include_namespaces: Vec<String>,
    /// Namespace globs to leave out.
    pub exclude_namespaces: Vec<String>,
    /// Resources to take (`kind`, `plural` or `plural.group`; empty: all).
    pub include_resources: Vec<String>,
    /// Resources to leave out.
    pub exclude_resources: Vec<String>,
    /// A label selector (`app=web,tier!=db`), applied by the server.
    pub selector: Option<String>,
    /// `--include-cluster-resources`: `None` is the default (all when no namespace filter,
    /// only the needed ones otherwise).
    pub include_cluster_resources: Option<bool>,
}

/// `*` matches any run of characters, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn matches(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => matches(&p[1..], t) || (!t.is_empty() && matches(p, &t[1..])),
            (Some('?'), Some(_)) => matches(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => matches(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    matches(&p, &t)
}

/// Whether a user's resource name (`Deployment`, `deployments`, `deployments.apps`,
/// `Deployment.apps`) names this type.
fn names(name: &str, resource: &ApiResourceType) -> bool {
    let name = name.to_lowercase();
    let (kind, plural) = (resource.kind.to_lowercase(), resource.plural.to_lowercase());
    match name.split_once('.') {
        Some((base, group)) => group == resource.group && (base == kind || base == plural),
        None => name == kind || name == plural,
    }
}

impl ResourceFilter {
    /// Whether namespaces are filtered at all.
    pub fn namespaces_filtered(&self) -> bool {
        !self.include_namespaces.is_empty() || !self.exclude_namespaces.is_empty()
    }

    /// The included namespaces named without globs (`*`, `?`).
    pub fn named_namespaces(&self) -> Vec<&str> {
        self.include_namespaces
            .iter()
            .map(String::as_str)
            .filter(|n| !n.contains(['*', '?']))
            .collect()
    }

    /// Which cluster-scoped objects to take.
    pub fn cluster_scope(&self) -> ClusterScope {
        match self.include_cluster_resources {
            Some(true) => ClusterScope::All,
            Some(false) => ClusterScope::None,
            None if self.namespaces_filtered() => ClusterScope::Needed,
            None => ClusterScope::All,
        }
    }

    /// Whether a namespace is selected.
    pub fn selects_namespace(&self, namespace: &str) -> bool {
        (self.include_namespaces.is_empty()
            || self
                .include_namespaces
                .iter()
                .any(|p| glob_match(p, namespace)))
            && !self
                .exclude_namespaces
                .iter()
                .any(|p| glob_match(p, namespace))
    }

    /// The names in the resource filters (include and exclude) that name none of `types`:
    /// a misspelt name, or a type this cluster (or snapshot) does not have, would otherwise
    /// select nothing without a word.
    pub fn unmatched_resources<'a>(&'a self, types: &[ApiResourceType]) -> Vec<&'a str> {
        self.include_resources
            .iter()
            .chain(&self.exclude_resources)
            .filter(|name| !types.iter().any(|t| names(name, t)))
            .map(String::as_str)
            .collect()
    }

    /// Whether this type is named in the include filter (which takes it even when it is
    /// left out by default).
    pub fn names_type(&self, resource: &ApiResourceType) -> bool {
        self.include_resources.iter().any(|n| names(n, resource))
    }

    /// Whether objects of a type are taken: listable, selected by the resource filters, not
    /// excluded by default unless named; cluster-scoped types only with [`ClusterScope::All`]
    /// (the needed ones are fetched one by one).
    pub fn selects_type(&self, resource: &ApiResourceType) -> bool {
        if !resource.verbs.iter().any(|v| v == "list") || resource.plural.contains('/') {
            return false;
        }
        if !resource.namespaced && self.cluster_scope() != ClusterScope::All {
            return false;
        }
        let named = self.names_type(resource);
        if !self.include_resources.is_empty() && !named {
            return false;
        }
        if self.exclude_resources.iter().any(|n| names(n, resource)) {
            return false;
        }
        named
            || !DEFAULT_EXCLUDED_RESOURCES
                .iter()
                .any(|n| names(n, resource))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(group: &str, kind: &str, plural: &str, namespaced: bool) -> ApiResourceType {
        ApiResourceType {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
            verbs: vec!["list".into(), "get".into()],
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("team-*", "team-a"));
        assert!(glob_match("*-prod", "shop-prod"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("team-*", "other"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn namespaces_by_include_and_exclude_globs() {
        let filter = ResourceFilter {
            include_namespaces: vec!["team-*".into()],
            exclude_namespaces: vec!["team-tmp*".into()],
            ..Default::default()
        };
        assert!(filter.selects_namespace("team-a"));
        assert!(!filter.selects_namespace("team-tmp1"));
        assert!(!filter.selects_namespace("kube-system"));
        assert_eq!(filter.cluster_scope(), ClusterScope::Needed);
        assert!(filter.named_namespaces().is_empty());
        let named = ResourceFilter {
            include_namespaces: vec!["shop".into(), "team-*".into()],
            ..Default::default()
        };
        assert_eq!(named.named_namespaces(), ["shop"]);
        assert_eq!(ResourceFilter::default().cluster_scope(), ClusterScope::All);
    }

    #[test]
    fn resources_by_kind_plural_or_group_and_default_exclusions() {
        let deployments = resource("apps", "Deployment", "deployments", true);
        let events = resource("", "Event", "events", true);
        let crds = resource(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
        );
        let all = ResourceFilter::default();
        assert!(all.selects_type(&deployments) && all.selects_type(&crds));
        assert!(!all.selects_type(&events), "events are noise by default");
        let named = ResourceFilter {
            include_resources: vec!["events".into(), "deployments.apps".into()],
            ..Default::default()
        };
        assert!(named.selects_type(&events) && named.selects_type(&deployments));
        assert!(!named.selects_type(&crds));
        let excluded = ResourceFilter {
            exclude_resources: vec!["Deployment".into()],
            ..Default::default()
        };
        assert!(!excluded.selects_type(&deployments));
        let namespaced_only = ResourceFilter {
            include_namespaces: vec!["a".into()],
            ..Default::default()
        };
        assert!(
            !namespaced_only.selects_type(&crds),
            "needed ones come one by one"
        );
        let ip = resource("networking.k8s.io", "IPAddress", "ipaddresses", false);
        assert!(!all.selects_type(&ip), "the API server's own records");
        let misspelt = ResourceFilter {
            include_resources: vec!["Deployment".into(), "widgts".into()],
            exclude_resources: vec!["events".into(), "gadgets.example.com".into()],
            ..Default::default()
        };
        assert_eq!(
            misspelt.unmatched_resources(&[deployments.clone(), events.clone()]),
            ["widgts", "gadgets.example.com"]
        );
        let mut subresource = deployments.clone();
        subresource.plural = "deployments/scale".into();
        assert!(!all.selects_type(&subresource));
    }
}
