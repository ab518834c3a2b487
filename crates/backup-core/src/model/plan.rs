use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What executing a plan will do to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PlannedAction {
    /// The item is missing and will be created.
    Create,
    /// The item exists, differs, and will be updated.
    Update,
    /// The item exists as it should; nothing to do.
    Unchanged,
    /// The item will not be touched (the reason says why).
    Skip,
    /// The item will be deleted (scale-down, purge).
    Delete,
}

/// One item of a plan, with the reason for its action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanItem {
    /// The item, as a person reads it.
    pub item: String,
    /// What will happen to it.
    pub action: PlannedAction,
    /// Why (empty when obvious).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// What an operation will do, computed before anything changes: a dry run is printing it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Plan {
    /// Items in execution order.
    pub items: Vec<PlanItem>,
}

impl Plan {
    /// Adds an item.
    pub fn push(
        &mut self,
        item: impl Into<String>,
        action: PlannedAction,
        reason: impl Into<String>,
    ) {
        self.items.push(PlanItem {
            item: item.into(),
            action,
            reason: reason.into(),
        });
    }

    /// How many items get each action.
    pub fn counts(&self) -> BTreeMap<PlannedAction, usize> {
        let mut counts = BTreeMap::new();
        for item in &self.items {
            *counts.entry(item.action).or_insert(0) += 1;
        }
        counts
    }

    /// Whether executing it would change anything.
    pub fn changes_anything(&self) -> bool {
        self.items
            .iter()
            .any(|i| !matches!(i.action, PlannedAction::Unchanged | PlannedAction::Skip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_change_detection() {
        let mut plan = Plan::default();
        plan.push("v1 ConfigMap demo/a", PlannedAction::Unchanged, "");
        plan.push(
            "v1 Secret demo/b",
            PlannedAction::Skip,
            "exists and --existing=skip",
        );
        assert!(!plan.changes_anything());
        plan.push("apps/v1 Deployment demo/web", PlannedAction::Create, "");
        assert!(plan.changes_anything());
        let counts = plan.counts();
        assert_eq!(
            (counts[&PlannedAction::Create], counts[&PlannedAction::Skip]),
            (1, 1)
        );
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["items"][1]["action"], "skip");
        assert!(json["items"][0].get("reason").is_none());
    }
}
