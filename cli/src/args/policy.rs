//! `inland policy`: check, apply and show the domain policy.

use clap::Subcommand;
use std::path::PathBuf;

/// The policy subcommands.
#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Check a policy file against the catalog; print every problem with its line and column.
    Check {
        /// The policy file (TOML).
        file: PathBuf,
    },
    /// Apply a policy file; a file with any problem changes nothing.
    Apply {
        /// The policy file (TOML).
        file: PathBuf,
    },
    /// Show the applied versions and the policy in force.
    Show,
}
