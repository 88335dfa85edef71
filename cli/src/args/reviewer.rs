//! `inland reviewer`: register and list the release gate's reviewers.

use clap::Subcommand;

/// The reviewer subcommands.
#[derive(Subcommand)]
pub enum ReviewerCmd {
    /// Register a reviewer. `--operator` names the operator they work for:
    /// they may not decide on its outputs.
    Add {
        /// Reviewer name.
        name: String,
        /// The operator the reviewer belongs to, if any.
        #[arg(long)]
        operator: Option<String>,
    },
    /// List reviewers.
    List,
}
