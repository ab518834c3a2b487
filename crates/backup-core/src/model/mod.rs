//! Snapshots, their components, phases and reports.

mod component;
mod phase;
mod plan;
mod report;
mod snapshot;

pub use component::Component;
pub use phase::Phase;
pub use plan::{Plan, PlanItem, PlannedAction};
pub use report::{ItemIssue, Report, Severity};
pub use snapshot::{Snapshot, SnapshotId, Totals};
