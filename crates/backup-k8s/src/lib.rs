//! kbackup's Kubernetes adapter: the cluster traits of `backup-core` on kube.
//!
//! SDK types stay inside this crate; callers see `backup-core` types and
//! [`backup_core::ClusterError`].

mod config_objects;
mod connect;
mod error;

pub use connect::{ConnectOptions, KubeCluster};
