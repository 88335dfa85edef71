//! `inland feedback`: operators' data quality reports on datasets.

use clap::Subcommand;

/// The feedback subcommands.
#[derive(Subcommand)]
pub enum FeedbackCmd {
    /// Report a data quality problem on a dataset.
    Add {
        /// The dataset.
        dataset: String,
        /// The reporting operator.
        #[arg(long)]
        operator: String,
        /// What is wrong.
        text: String,
    },
    /// List feedback (for admins).
    List,
}
