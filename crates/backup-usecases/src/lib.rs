//! kbackup's use cases: the procedures that back up and restore, shared by every front-end.
//! A front-end resolves its settings, makes one call here and renders what comes back; it
//! holds no procedure of its own. Nothing here prints, names a command-line flag or draws
//! progress: calls take option structs and a progress sink, and return typed reports,
//! errors and next steps.

pub mod cluster;
pub mod configuration_status;
pub mod credentials;
pub mod hooks;
pub mod restore_run;
pub mod restores;
pub mod retention_policy;
pub mod selection;
pub mod sessions;
pub mod snapshot;
pub mod stackstate;
pub mod storage_probe;
pub mod storage_removal;
pub mod storage_resource;
pub mod streams;
#[cfg(test)]
mod test_repository;
pub mod trees;
pub mod trigger;
pub mod verifiers;
pub mod volumes;
