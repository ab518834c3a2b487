//! Declarative backups, as the operator runs them: a BackupSession planned from the objects
//! it names, carried out by a Job per repository (`run`), followed to its end (`reconcile`);
//! a BackupConfiguration's CronJobs, accounts and history, and a BackupStorage's probe
//! (`configuration`). The operator front-end only watches and calls these.

pub mod claim_job;
pub mod configuration;
pub mod data_stores;
pub mod deletion;
pub mod job_end;
pub mod objects;
pub mod plan;
pub mod reconcile;
pub mod report;
pub mod retry;
pub mod run;
pub mod storage;
