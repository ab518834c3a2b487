//! What a planned restore keeps in memory of one object: where its record is, its type,
//! namespace, wave and action, and a note saying why (the note's text is made when it is
//! shown, from the record or from the spool).

use super::ExistingPolicy;
use super::spool::Span;
use backup_core::model::PlannedAction;

/// Why an object has its action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Note {
    /// Nothing to say.
    None,
    /// The cluster makes it, or it is never restored (`restore_skip_reason`).
    LeftToCluster,
    /// Its controller is restored too and makes it again.
    LeftToController,
    /// Its API group is never restored (`skip_groups`).
    LeftOut,
    /// It exists and differs where the spooled text says.
    Differs(Span),
    /// It cannot be restored as planned, as the spooled text says.
    Refused(Span),
    /// Its type could not be listed in its namespace.
    LiveUnknown,
    /// An admission webhook, in the last wave.
    LastWave,
}

/// One object of a planned restore.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    /// Its record in the spool.
    pub span: Span,
    /// Its type (an index into the planner's types).
    pub resource: u32,
    /// Its namespace after mapping (an index into the planner's namespaces).
    pub namespace: Option<u32>,
    /// Its wave (0 first).
    pub wave: u32,
    pub action: PlannedAction,
    /// It cannot be restored as planned (an existing object that differs under the policy
    /// `fail`, node ports taken).
    pub conflict: bool,
    /// It exists and differs.
    pub differs: bool,
    /// A Service with node ports.
    pub node_ports: bool,
    pub note: Note,
}

impl Slot {
    /// An object to create, unless the plan finds otherwise.
    pub(super) fn new(span: Span, resource: u32, namespace: Option<u32>, node_ports: bool) -> Self {
        Self {
            span,
            resource,
            namespace,
            wave: 0,
            action: PlannedAction::Create,
            conflict: false,
            differs: false,
            node_ports,
            note: Note::None,
        }
    }

    /// Left alone on purpose: whatever else was found, it is skipped.
    pub(super) fn is_left_alone(&self) -> bool {
        matches!(
            self.note,
            Note::LeftToCluster | Note::LeftToController | Note::LeftOut
        )
    }

    /// The object exists: as backed up (`differences` is `None`), or differing, in which case
    /// the policy decides.
    pub(super) fn exists(&mut self, differences: Option<Span>, policy: ExistingPolicy) {
        if self.is_left_alone() {
            return;
        }
        let Some(differences) = differences else {
            self.action = PlannedAction::Unchanged;
            return;
        };
        self.differs = true;
        self.note = Note::Differs(differences);
        (self.action, self.conflict) = match policy {
            ExistingPolicy::Update => (PlannedAction::Update, false),
            ExistingPolicy::Skip => (PlannedAction::Skip, false),
            ExistingPolicy::Fail => (PlannedAction::Skip, true),
        };
    }

    /// Left to the cluster or to its controller.
    pub(super) fn leave_alone(&mut self, why: Note) {
        self.action = PlannedAction::Skip;
        self.note = why;
        self.conflict = false;
        self.differs = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot() -> Slot {
        Slot::new(Span::default(), 0, None, false)
    }

    #[test]
    fn an_existing_object_follows_the_policy_unless_left_alone() {
        let mut same = slot();
        same.exists(None, ExistingPolicy::Fail);
        assert_eq!(same.action, PlannedAction::Unchanged);
        let mut failing = slot();
        failing.exists(Some(Span::default()), ExistingPolicy::Fail);
        assert_eq!(
            (failing.action, failing.conflict, failing.differs),
            (PlannedAction::Skip, true, true)
        );
        let mut updated = slot();
        updated.exists(Some(Span::default()), ExistingPolicy::Update);
        assert_eq!(updated.action, PlannedAction::Update);
        let mut pod = slot();
        pod.leave_alone(Note::LeftToController);
        pod.exists(Some(Span::default()), ExistingPolicy::Update);
        assert_eq!(
            (pod.action, pod.differs, pod.note),
            (PlannedAction::Skip, false, Note::LeftToController)
        );
    }
}
