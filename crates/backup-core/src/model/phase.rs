use serde::{Deserialize, Serialize};
use std::fmt;

/// The outcome of a snapshot, a component, a restore or a session, as KubeStash and Velero
/// name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Phase {
    /// Not started yet.
    #[default]
    Pending,
    /// Under way.
    Running,
    /// Every item succeeded.
    Succeeded,
    /// Some items failed, others succeeded; the report says which.
    PartiallyFailed,
    /// Nothing usable was produced.
    Failed,
}

impl Phase {
    /// Whether the work is over, successfully or not.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Phase::Succeeded | Phase::PartiallyFailed | Phase::Failed
        )
    }

    /// The phase of a whole made of parts in these phases: Succeeded only if all parts
    /// succeeded, Failed if all finished parts failed, PartiallyFailed for a mix, and
    /// Running/Pending while any part is not finished.
    pub fn combine(parts: impl IntoIterator<Item = Phase>) -> Phase {
        let (mut any, mut ok, mut failed, mut running, mut pending) = (false, 0, 0, 0, 0);
        for part in parts {
            any = true;
            match part {
                Phase::Succeeded => ok += 1,
                Phase::Failed => failed += 1,
                Phase::PartiallyFailed => return Phase::PartiallyFailed,
                Phase::Running => running += 1,
                Phase::Pending => pending += 1,
            }
        }
        match (any, ok, failed, running, pending) {
            (false, ..) => Phase::Succeeded,
            (_, _, _, r, _) if r > 0 => Phase::Running,
            (_, _, _, _, p) if p > 0 && (ok + failed) == 0 => Phase::Pending,
            (_, _, _, _, p) if p > 0 => Phase::Running,
            (_, _, 0, _, _) => Phase::Succeeded,
            (_, 0, _, _, _) => Phase::Failed,
            _ => Phase::PartiallyFailed,
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::Phase::*;
    use super::*;

    #[test]
    fn combine_covers_every_mix() {
        assert_eq!(Phase::combine([]), Succeeded);
        assert_eq!(Phase::combine([Succeeded, Succeeded]), Succeeded);
        assert_eq!(Phase::combine([Failed, Failed]), Failed);
        assert_eq!(Phase::combine([Succeeded, Failed]), PartiallyFailed);
        assert_eq!(
            Phase::combine([Succeeded, PartiallyFailed]),
            PartiallyFailed
        );
        assert_eq!(Phase::combine([Succeeded, Running]), Running);
        assert_eq!(Phase::combine([Pending, Pending]), Pending);
        assert_eq!(Phase::combine([Succeeded, Pending]), Running);
    }

    #[test]
    fn finished_phases() {
        assert!(Succeeded.is_finished() && Failed.is_finished() && PartiallyFailed.is_finished());
        assert!(!Running.is_finished() && !Pending.is_finished());
    }
}
