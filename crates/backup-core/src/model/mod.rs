//! Snapshots, their components, phases and reports.

mod component;
mod next_step;
mod phase;
mod plan;
mod report;
mod snapshot;

pub use component::Component;
pub use next_step::NextStep;
pub use phase::Phase;
pub use plan::{Plan, PlanItem, PlannedAction};
pub use report::{ItemIssue, Report, Severity};
pub use snapshot::{Snapshot, SnapshotId, Totals};
