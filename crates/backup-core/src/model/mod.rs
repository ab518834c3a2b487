//! Snapshots, their components, phases and reports.

mod component;
mod phase;
mod report;
mod snapshot;

pub use component::Component;
pub use phase::Phase;
pub use report::{ItemIssue, Report, Severity};
pub use snapshot::{Snapshot, SnapshotId, Totals};
