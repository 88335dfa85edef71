//! `inland token`: issue, list and revoke the bearer tokens people use with
//! the domain server. A bootstrap command: it opens the domain directory
//! directly, so run it with the server stopped (or for the first admin token).

use clap::{Subcommand, ValueEnum};

/// The roles a token can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Registers data, operators and grants; issues tokens.
    Admin,
    /// A user of an operator organization (name it with --operator).
    Operator,
    /// A registered reviewer of the release gate.
    Reviewer,
    /// Reads the ledger and reports.
    Auditor,
}

impl From<RoleArg> for inland_runtime::Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => inland_runtime::Role::Admin,
            RoleArg::Operator => inland_runtime::Role::Operator,
            RoleArg::Reviewer => inland_runtime::Role::Reviewer,
            RoleArg::Auditor => inland_runtime::Role::Auditor,
        }
    }
}

/// The token subcommands.
#[derive(Subcommand)]
pub enum TokenCmd {
    /// Issue a token; it is printed once and only its hash is kept.
    Issue {
        /// The role it carries.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The person's name (for reviewers, their registered reviewer name).
        #[arg(long)]
        name: String,
        /// For operators: the organization they act for.
        #[arg(long)]
        operator: Option<String>,
        /// Days until it expires.
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..=3650))]
        expires_in: u64,
    },
    /// List tokens (never their secrets).
    List {
        /// Print JSON, one record per line.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: it stops working at once.
    Revoke {
        /// Token id.
        id: String,
    },
}
