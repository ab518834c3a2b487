//! Cluster resources: which objects a backup takes, how each is cleaned, stored and checked,
//! and the order and shape in which a restore puts them back. Pure functions; the calls to
//! the cluster are in backup-k8s.

mod diff;
mod filter;
mod managed;
mod manifest;
mod mapping;
mod order;
mod shape;

pub use diff::differences;
pub use filter::{ClusterScope, DEFAULT_EXCLUDED_RESOURCES, ResourceFilter, glob_match};
pub use managed::{managed_by_cluster, restore_skip_reason};
pub use manifest::{
    Cleaning, DigestBuilder, LAST_APPLIED, MANIFEST_FORMAT, ManifestError, ManifestHeader,
    ManifestReader, ManifestRecord, ManifestTrailer, ManifestWriter, canonical_json, clean_object,
};
pub use mapping::{NamespaceMapping, recreated_by_controller};
pub use order::{
    ObjectKey, RestoreOrder, cluster_dependencies, dependencies, is_admission_webhook,
    restore_order,
};
pub use shape::{RestoreShape, node_ports};
