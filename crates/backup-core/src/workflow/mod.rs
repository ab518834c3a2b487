//! The "pause, restore, resume" dance shared by every data store restore: take the restore
//! lock, scale the workloads that use the data store down (remembering their replicas in
//! annotations on the workloads themselves), and later scale them back up from those
//! annotations. State lives in the cluster, never only in this process, so a restore can be
//! finalized after a crash, a Ctrl-C, or from another machine, and a cluster left half-way by
//! StackState's Go `sts-backup` (same annotations) is finalized the same way.

mod job_launch;
mod pause;

pub use job_launch::launch_job;
pub use pause::{
    PausePlan, PausedWorkload, WorkflowError, ensure_unlocked, mutually_exclusive, pause_workloads,
    paused_workloads, plan_pause, resume_workloads,
};

/// Annotation naming the data store whose restore holds the lock.
pub const RESTORE_IN_PROGRESS: &str = "stackstate.com/restore-in-progress";
/// Annotation with the RFC 3339 time the restore started.
pub const RESTORE_STARTED_AT: &str = "stackstate.com/restore-started-at";
/// Annotation with the replica count to restore.
pub const PRE_RESTORE_REPLICAS: &str = "stackstate.com/pre-restore-replicas";
