//! `inland output`: inspect outputs held in quarantine.

use clap::Subcommand;

/// The output subcommands.
#[derive(Subcommand)]
pub enum OutputCmd {
    /// List outputs in quarantine.
    List,
    /// Show an output's lineage and first rows (inside the domain only).
    Show {
        /// Output id (`<job id>/<name>`).
        id: String,
    },
}
