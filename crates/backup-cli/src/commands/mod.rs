//! One module per command.

pub mod cluster;
pub mod completions;
pub mod datastore;
pub mod elasticsearch;
mod installation;
pub mod rbac;
pub mod repo;
pub mod restore_session;
pub mod session_run;
pub mod storage;
pub mod trigger;
pub mod version;
pub mod volumes;
