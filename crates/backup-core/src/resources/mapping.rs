//! What a restore moves or leaves to others: namespace mapping, objects their controllers
//! recreate.

use super::manifest::ManifestRecord;
use super::order::{ObjectKey, owner_key};
use serde_json::Value;
use std::collections::BTreeMap;

/// `--namespace-mapping old:new`, repeatable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceMapping(BTreeMap<String, String>);

impl NamespaceMapping {
    /// Parses `old:new` pairs; a namespace mapped twice is an error.
    pub fn parse(pairs: &[String]) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for pair in pairs {
            let (old, new) = pair
                .split_once(':')
                .filter(|(o, n)| !o.is_empty() && !n.is_empty())
                .ok_or_else(|| format!("--namespace-mapping '{pair}' is not old:new"))?;
            if map.insert(old.to_owned(), new.to_owned()).is_some() {
                return Err(format!("namespace {old} is mapped twice"));
            }
        }
        Ok(Self(map))
    }

    /// Where a namespace goes.
    pub fn map<'a>(&'a self, namespace: &'a str) -> &'a str {
        self.0
            .get(namespace)
            .map(String::as_str)
            .unwrap_or(namespace)
    }

    /// Whether it maps anything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Moves a record into its new namespace: its own namespace, a Namespace's name, and the
    /// namespaces of ServiceAccount subjects of bindings.
    pub fn apply(&self, record: &mut ManifestRecord) {
        if self.0.is_empty() {
            return;
        }
        if let Some(ns) = record.namespace.clone() {
            let mapped = self.map(&ns).to_owned();
            record.object["metadata"]["namespace"] = Value::String(mapped.clone());
            record.namespace = Some(mapped);
        }
        if record.kind == "Namespace" && record.group.is_empty() {
            let mapped = self.map(&record.name).to_owned();
            record.object["metadata"]["name"] = Value::String(mapped.clone());
            record.name = mapped;
        }
        if let Some(subjects) = record
            .object
            .pointer_mut("/subjects")
            .and_then(Value::as_array_mut)
        {
            for subject in subjects {
                if let Some(ns) = subject["namespace"].as_str().map(str::to_owned) {
                    subject["namespace"] = Value::String(self.map(&ns).to_owned());
                }
            }
        }
    }
}

/// The object's controller (the owner reference marked `controller`), as a key in the
/// object's namespace. When that owner is restored too, the object is left to it: it makes
/// the object again (a Deployment's ReplicaSets, their Pods, a Job's Pods).
pub fn controller_of(record: &ManifestRecord) -> Option<ObjectKey> {
    record.object["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .filter(|o| o["controller"] == true)
        .find_map(|owner| owner_key(owner, record.namespace.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(kind: &str, ns: Option<&str>, name: &str, object: Value) -> ManifestRecord {
        let mut object = object;
        object["metadata"]["name"] = json!(name);
        if let Some(ns) = ns {
            object["metadata"]["namespace"] = json!(ns);
        }
        let group = if kind.contains("Binding") {
            "rbac.authorization.k8s.io"
        } else {
            ""
        };
        ManifestRecord::sample(group, kind, ns, name, object)
    }

    #[test]
    fn mapping_moves_objects_namespaces_and_subjects() {
        let mapping = NamespaceMapping::parse(&["shop:shop-copy".into()]).unwrap();
        let mut binding = record(
            "RoleBinding",
            Some("shop"),
            "b",
            json!({"subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": "shop"}]}),
        );
        mapping.apply(&mut binding);
        assert_eq!(binding.namespace.as_deref(), Some("shop-copy"));
        assert_eq!(binding.object["metadata"]["namespace"], "shop-copy");
        assert_eq!(binding.object["subjects"][0]["namespace"], "shop-copy");
        let mut namespace = record("Namespace", None, "shop", json!({}));
        mapping.apply(&mut namespace);
        assert_eq!(namespace.name, "shop-copy");
        assert!(NamespaceMapping::parse(&["nocolon".into()]).is_err());
        assert!(NamespaceMapping::parse(&["a:b".into(), "a:c".into()]).is_err());
    }

    #[test]
    fn an_object_s_controller_is_its_controlling_owner() {
        let pod = record(
            "Pod",
            Some("shop"),
            "web-1",
            json!({"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "not-controller"},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "controller": true}]}}),
        );
        assert_eq!(
            controller_of(&pod),
            Some(ObjectKey::new(
                "apps",
                "ReplicaSet",
                Some("shop"),
                "web-abc"
            ))
        );
        assert!(controller_of(&record("Pod", Some("shop"), "bare", json!({}))).is_none());
    }
}
