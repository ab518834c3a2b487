//! Cluster resources: which objects a backup takes, how each is cleaned, stored and checked,
//! and the order and shape in which a restore puts them back. Pure functions; the calls to
//! the cluster are in backup-k8s.

mod diff;
mod filter;
mod manifest;
mod mapping;
mod order;

pub use diff::differences;
pub use filter::{ClusterScope, DEFAULT_EXCLUDED_RESOURCES, ResourceFilter, glob_match};
pub use manifest::{
    DigestBuilder, MANIFEST_FORMAT, ManifestError, ManifestHeader, ManifestReader, ManifestRecord,
    ManifestTrailer, ManifestWriter, canonical_json, clean_object,
};
pub use mapping::{NamespaceMapping, recreated_by_controller, restore_skip_reason};
pub use order::{ObjectKey, RestoreOrder, cluster_dependencies, dependencies, restore_order};
