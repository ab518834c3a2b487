//! `kbackup backup cluster`, `kbackup restore cluster`, `kbackup snapshot describe`: the
//! manifests of a cluster's resources as a component of a kbackup snapshot.

mod application;
mod backup;
mod describe;
mod diff;
mod restore;

pub use backup::backup;
pub use describe::describe;
pub use diff::diff;
pub use restore::restore;

use crate::cli::FilterArgs;
use crate::exit::CliError;
use backup_core::resources::ResourceFilter;
use backup_usecases::cluster::{ManifestsError, RestorePlanError};

impl From<FilterArgs> for ResourceFilter {
    fn from(args: FilterArgs) -> Self {
        Self {
            include_namespaces: args.include_namespaces,
            exclude_namespaces: args.exclude_namespaces,
            include_resources: args.include_resources,
            exclude_resources: args.exclude_resources,
            selector: args.selector,
            include_cluster_resources: args.include_cluster_resources,
        }
    }
}

impl From<ManifestsError> for CliError {
    fn from(error: ManifestsError) -> Self {
        match error {
            ManifestsError::Repository(error) => error.into(),
            other => CliError::user(other),
        }
    }
}

impl From<RestorePlanError> for CliError {
    fn from(error: RestorePlanError) -> Self {
        match error {
            RestorePlanError::Manifests(error) => error.into(),
            RestorePlanError::Cluster(error) => error.into(),
        }
    }
}
