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
    ManifestReader, ManifestRecord, ManifestTrailer, ManifestWriter, SERVER_SET_METADATA,
    canonical_json, clean_object,
};
pub use mapping::{NamespaceMapping, controller_of};
pub use order::{
    DependencyGraph, ObjectKey, RestoreOrder, cluster_dependencies, dependencies,
    is_admission_webhook, kind_name, owner_key, restore_order,
};
pub use shape::{RestoreShape, node_ports};

#[cfg(test)]
mod documented {
    use super::*;

    /// docs/cluster-resources.md lists exactly what the code leaves out and drops.
    #[test]
    fn the_documentation_names_every_excluded_type_and_cleaned_field() {
        let page = include_str!("../../../../docs/cluster-resources.md");
        for name in DEFAULT_EXCLUDED_RESOURCES {
            assert!(
                page.contains(&format!("`{name}`")),
                "{name} is not documented"
            );
        }
        for field in SERVER_SET_METADATA {
            assert!(
                page.contains(&format!("`{field}`"))
                    || page.contains(&format!("`metadata.{field}`")),
                "{field} is not documented"
            );
        }
        assert!(page.contains(LAST_APPLIED));
    }
}
