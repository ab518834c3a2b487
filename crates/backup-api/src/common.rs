//! Types several kinds share: references, conditions, policies.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A namespaced object of a known kind: its name, and its namespace when not the referrer's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// Its name.
    #[schemars(length(max = 253))]
    #[x_kube(validation = "self != ''")]
    pub name: String,
    /// Its namespace (default: the referrer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl ObjectRef {
    /// Its namespace, or the referrer's (`default`) when it names none.
    pub fn namespace_or(&self, default: &str) -> String {
        self.namespace.clone().unwrap_or_else(|| default.to_owned())
    }
}

/// A Secret, by name and namespace (default: the referrer's).
pub type SecretRef = ObjectRef;

/// An object of any kind (a backup's target).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypedObjectRef {
    /// Its API group (empty for the core group).
    #[serde(default)]
    pub api_group: String,
    /// Its kind.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// What deleting a storage or repository object does to the data it names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// The object goes; the data stays.
    #[default]
    Delete,
    /// The object goes with the data.
    WipeOut,
}

/// Which namespaces may use a storage or a retention policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsagePolicy {
    /// The namespaces allowed.
    #[serde(default)]
    pub allowed_namespaces: NamespaceSelector,
}

/// Namespaces: all, the object's own, or those whose labels match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.from != 'Selector' || has(self.matchLabels)").message("from: Selector needs matchLabels"))]
pub struct NamespaceSelector {
    /// Where they come from.
    #[serde(default)]
    pub from: NamespacesFrom,
    /// With `from: Selector`, the labels a namespace must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// Where allowed namespaces come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum NamespacesFrom {
    /// The object's own namespace only.
    #[default]
    Same,
    /// Every namespace.
    All,
    /// The namespaces whose labels match.
    Selector,
}

/// A condition of an object's status (`metav1.Condition`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// What it is about (`Ready`, `StorageReachable`, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// Whether it holds.
    pub status: ConditionStatus,
    /// Why, in one CamelCase word.
    #[serde(default)]
    pub reason: String,
    /// Why, for a person.
    #[serde(default)]
    pub message: String,
    /// When the status last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The object generation it was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A condition's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// It holds.
    True,
    /// It does not.
    False,
    /// Not known yet.
    Unknown,
}
