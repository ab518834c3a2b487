use super::Phase;
use serde::{Deserialize, Serialize};

/// How bad an item's problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Severity {
    /// The item was handled, with a caveat.
    Warning,
    /// The item was not handled.
    Error,
}

/// A problem with one item (a resource, an object, an index), collected instead of stopping
/// at the first one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemIssue {
    /// The item, as a person reads it (`apps/v1 Deployment demo/web`, `data/ab12...`).
    pub item: String,
    /// Warning or error.
    pub severity: Severity,
    /// What went wrong, naming the cause.
    pub message: String,
}

/// The outcome of a plan's execution: counts, and every warning and error per item.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Report {
    /// Items handled successfully.
    pub succeeded: u64,
    /// Items skipped on purpose (with a warning saying why).
    pub skipped: u64,
    /// Every problem met, in order.
    pub issues: Vec<ItemIssue>,
}

impl Report {
    /// Records a warning about an item.
    pub fn warn(&mut self, item: impl Into<String>, message: impl Into<String>) {
        self.push(item, Severity::Warning, message);
    }

    /// Records an error about an item.
    pub fn error(&mut self, item: impl Into<String>, message: impl Into<String>) {
        self.push(item, Severity::Error, message);
    }

    fn push(&mut self, item: impl Into<String>, severity: Severity, message: impl Into<String>) {
        self.issues.push(ItemIssue {
            item: item.into(),
            severity,
            message: message.into(),
        });
    }

    /// Number of items that failed.
    pub fn errors(&self) -> usize {
        self.issues
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.issues
            .iter()
            .filter(|i| i.severity == Severity::Warning)
            .count()
    }

    /// Succeeded when nothing failed, Failed when nothing succeeded and something failed,
    /// PartiallyFailed otherwise.
    pub fn phase(&self) -> Phase {
        match (self.succeeded, self.errors()) {
            (_, 0) => Phase::Succeeded,
            (0, _) => Phase::Failed,
            _ => Phase::PartiallyFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_follows_errors_and_successes() {
        let mut r = Report::default();
        assert_eq!(r.phase(), Phase::Succeeded);
        r.warn("a", "odd but fine");
        assert_eq!(r.phase(), Phase::Succeeded);
        r.error("b", "denied");
        assert_eq!(r.phase(), Phase::Failed);
        r.succeeded = 3;
        assert_eq!(r.phase(), Phase::PartiallyFailed);
        assert_eq!((r.errors(), r.warnings()), (1, 1));
    }
}
