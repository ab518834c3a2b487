//! Hooks around a session's work (seed 004's HookInfo on KubeStash's HookTemplate): planned
//! against their templates before anything runs, then run before and after the work, and
//! their outcomes written into the session's status.

pub mod plan;
pub mod run;
pub mod status;
