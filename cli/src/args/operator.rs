//! `inland operator`: register, approve, suspend and inspect operators.

use clap::{Subcommand, ValueEnum};
use inland_runtime::OperatorType;
use std::path::PathBuf;

/// The operator subcommands.
#[derive(Subcommand)]
pub enum OperatorCmd {
    /// Register an operator (pending until approved).
    Add {
        /// Operator name (its identity).
        name: String,
        /// Operator type: how widely it operates.
        #[arg(long = "type", value_enum)]
        kind: OperatorTypeArg,
        /// A qualification statement (repeatable; pair each with --evidence).
        #[arg(long = "qualification")]
        statements: Vec<String>,
        /// The evidence document for the qualification at the same position.
        #[arg(long = "evidence")]
        evidence: Vec<PathBuf>,
    },
    /// Approve a pending or suspended operator.
    Approve {
        /// Operator name.
        name: String,
    },
    /// Suspend an operator: its jobs are refused.
    Suspend {
        /// Operator name.
        name: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// List operators.
    List,
    /// Show one operator.
    Show {
        /// Operator name.
        name: String,
    },
}

/// `--type` of `operator add`: the runtime's [`OperatorType`], in the words its records use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OperatorTypeArg {
    /// Operates across domains.
    #[value(name = "comprehensive")]
    Comprehensive,
    /// Operates within one field.
    #[value(name = "domain")]
    Domain,
    /// Operates for one scenario.
    #[value(name = "scenario")]
    Scenario,
}

impl From<OperatorTypeArg> for OperatorType {
    fn from(kind: OperatorTypeArg) -> Self {
        match kind {
            OperatorTypeArg::Comprehensive => OperatorType::Comprehensive,
            OperatorTypeArg::Domain => OperatorType::Domain,
            OperatorTypeArg::Scenario => OperatorType::Scenario,
        }
    }
}
