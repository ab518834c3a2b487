//! kbackup's Kubernetes adapter: the cluster traits of `backup-core` on kube.
//!
//! [`KubeCluster`] implements every trait of [`backup_core::Cluster`]. SDK types stay inside
//! this crate; callers see `backup-core` types and [`backup_core::ClusterError`].

pub mod cluster_resources;
mod config_objects;
mod connect;
pub mod datastore;
mod error;
mod exec;
mod forward;
mod jobs;
pub mod rbac;
mod resources;
mod wire;
mod workloads;

pub use connect::{ConnectOptions, KubeCluster};
pub use resources::FIELD_MANAGER;
