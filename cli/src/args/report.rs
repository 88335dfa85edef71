//! `inland report`: usage and compliance reports from the evidence ledger.

use clap::Subcommand;

/// The report subcommands.
#[derive(Subcommand)]
pub enum ReportCmd {
    /// Jobs run, datasets used, outputs and refusals over a period.
    Usage {
        /// Only this operator.
        #[arg(long)]
        operator: Option<String>,
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// Last day (YYYY-MM-DD).
        #[arg(long)]
        until: String,
    },
    /// Each clause of the standard, its control, and the evidence for the period.
    Compliance {
        /// First day (YYYY-MM-DD); default: a year ago.
        #[arg(long)]
        from: Option<String>,
        /// Last day (YYYY-MM-DD); default: today.
        #[arg(long)]
        until: Option<String>,
    },
}
