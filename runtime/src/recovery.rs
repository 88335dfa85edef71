//! What a start found half done (#24), as a record of its own: the
//! runtime keeps it for `inland doctor`, and start-up (`jobs::recover`) fills it.

/// What a start found half done and finished or rolled back: `inland
/// doctor` prints it, so a repair is never silent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Entries whose change was rolled back (`not_made`).
    pub rolled_back: Vec<u64>,
    /// Entries whose change only restricts (a revocation, a suspension, a
    /// termination's mark) and was made now instead: rolling those back
    /// would let a crash undo an admin's decision.
    pub finished: Vec<u64>,
    /// Jobs recorded as interrupted.
    pub interrupted: Vec<String>,
    /// Terminations finished.
    pub terminations: Vec<String>,
    /// Files written ahead of an event that never came, deleted.
    pub orphans: Vec<String>,
    /// Entries re-announced from the state after the ledger's tail was cut.
    pub reappended: Vec<u64>,
}

impl Recovery {
    /// Whether the start found nothing to do.
    pub fn is_empty(&self) -> bool {
        self == &Recovery::default()
    }
}
