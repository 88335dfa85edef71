//! What the host records about the cells of an aggregate result, decided
//! by the aggregate rule from the plan and read by the answer's fact
//! recording: which column is a group key, which a measure and where its
//! contributions are.

use inland_gate::MeasureKind;

/// What the host records about one visible column of an aggregate result.
#[derive(Debug, Clone, PartialEq)]
pub enum CellRole {
    /// A group key.
    Key,
    /// An aggregate value.
    Measure {
        /// The aggregate as planned, e.g. `sum(residents.income)`.
        source: String,
        /// Frequency, magnitude or other.
        kind: MeasureKind,
        /// Which hidden contribution column (in order) holds its contributions.
        contrib: Option<usize>,
    },
    /// A function of its group's aggregates (a scale, offset, rounding,
    /// cast or ratio): it carries their facts, so the cell rules of what it
    /// came from still apply to it.
    Derived {
        /// `derived from` the aggregates, as planned.
        source: String,
        /// The strictest kind among them.
        kind: MeasureKind,
        /// Their hidden contribution columns; the most dominated is used.
        contribs: Vec<usize>,
    },
    /// Computed some other way: the host does not vouch for it.
    Other,
}

/// How the host turns an aggregate result into per-cell facts for the gate.
#[derive(Debug, Clone, PartialEq)]
pub struct CellPlan {
    /// One role per visible column.
    pub columns: Vec<CellRole>,
    /// Hidden contribution columns, just before the group-size column.
    pub contribs: usize,
}
