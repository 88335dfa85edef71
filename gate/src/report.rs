//! What the gate found: one result per check, the cells concerned, and the
//! plan for the released version of the table.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Nothing found.
    Pass,
    /// Cells or the table failed; see `remedy`.
    Fail,
    /// A person must look: the rule cannot decide.
    NeedsReview,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NeedsReview => "needs-review",
        })
    }
}

/// What happens to a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Remedy {
    /// Nothing to do.
    None,
    /// The failing cells are suppressed in the released version; a reviewer
    /// may override with a written justification.
    Suppressed,
    /// The cells were released anyway: a reviewer overrode the check.
    Overridden,
    /// The output cannot be released.
    Blocked,
    /// The released version was adjusted (totals recomputed, values rounded).
    Adjusted,
}

/// One cell a check is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellIssue {
    /// Row, from 0.
    pub row: u32,
    /// Column name.
    pub column: String,
    /// What the check found.
    pub detail: String,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's name, as used in `--override`.
    pub check: String,
    /// Its parameter as set in the policy.
    pub parameter: String,
    /// Pass, fail or needs-review.
    pub status: Status,
    /// What the gate does about it.
    pub remedy: Remedy,
    /// One line for people.
    pub summary: String,
    /// The first cells concerned.
    pub cells: Vec<CellIssue>,
    /// How many cells in all.
    pub cell_count: u64,
}

/// The gate's overall decision before review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// May go to review.
    Review,
    /// Cannot leave the domain.
    Blocked,
}

/// A change to one cell in the released version.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum CellChange {
    /// Replaced by null.
    Suppress,
    /// Replaced by this value (a recomputed total, a rounded count).
    Set(f64),
}

/// The gate's report on one output table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    /// Review or blocked.
    pub verdict: Verdict,
    /// Independent approvals release needs.
    pub approvals_required: u32,
    /// Whether the table is judged row-level (by its label or its size).
    pub row_level: bool,
    /// Every check's result, in a fixed order.
    pub checks: Vec<CheckResult>,
    /// Cells traced to host-computed aggregates.
    pub traced_cells: u64,
    /// Cells the host could not trace (judged by the job's label, shown to the reviewer).
    pub untraced_cells: u64,
    /// Checks a reviewer overrode for this report.
    pub overrides: Vec<String>,
}

impl GateReport {
    /// A check's result by name.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.check == name)
    }

    /// Checks that failed or need review.
    pub fn findings(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.status != Status::Pass)
    }

    /// Why the output is blocked, one line per reason.
    pub fn blocked_because(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c.remedy == Remedy::Blocked)
            .map(|c| format!("{}: {}", c.check, c.summary))
            .collect()
    }
}

/// The released version of a table: which cells change. Applied by [`crate::apply`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReleasePlan {
    /// (row, column, change), sorted.
    pub changes: Vec<(u32, u32, CellChange)>,
}
