//! `inland review`: the release queue, one output's review view, and votes.

use clap::{Subcommand, ValueEnum};

/// The review subcommands.
#[derive(Subcommand)]
pub enum ReviewCmd {
    /// Outputs with a release request and their states.
    List,
    /// One output: content with flagged cells marked, check report, lineage, label, votes.
    Show {
        /// Output id.
        id: String,
    },
    /// Every row of an output, tab-separated, page by page (the review page shows the first 30).
    Rows {
        /// Output id.
        id: String,
    },
    /// Approve release, as the reviewer your token names. Overriding a failed cell check needs --justification.
    Approve {
        /// Output id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// A cell check to override; repeatable.
        #[arg(long = "override", value_enum)]
        overrides: Vec<OverridableCheck>,
        /// Written justification for the overrides (flagged in the record).
        #[arg(long)]
        justification: Option<String>,
    },
    /// Reject release.
    Reject {
        /// Output id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Return the output to its operator for changes.
    Return {
        /// Output id.
        id: String,
        /// What to change.
        #[arg(long)]
        reason: String,
    },
}

/// `--override` of `review approve`: the cell checks a reviewer may override
/// (the gate's `OVERRIDABLE`; blocks never can be).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OverridableCheck {
    /// Fewer distinct entities than `min_cell_count`.
    #[value(name = "min-cell-count")]
    MinCellCount,
    /// The largest contributions dominate the total.
    #[value(name = "dominance")]
    Dominance,
    /// The rest is under `p_percent` of the largest contribution.
    #[value(name = "p-percent")]
    PPercent,
    /// Differs from a cell already released by too few entities.
    #[value(name = "differencing")]
    Differencing,
}

impl OverridableCheck {
    /// The check's name as the gate and the vote record spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            OverridableCheck::MinCellCount => "min-cell-count",
            OverridableCheck::Dominance => "dominance",
            OverridableCheck::PPercent => "p-percent",
            OverridableCheck::Differencing => "differencing",
        }
    }
}
