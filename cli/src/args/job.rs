//! `inland job`: run a job component under a grant, and inspect jobs.

use clap::Subcommand;
use std::path::PathBuf;

/// The job subcommands.
#[derive(Subcommand)]
pub enum JobCmd {
    /// Run a job component under a grant and show its log and outputs.
    Run {
        /// The job's .wasm component.
        wasm: PathBuf,
        /// The submitting operator.
        #[arg(long, env = "INLAND_OPERATOR")]
        operator: String,
        /// The grant the job runs under.
        #[arg(long)]
        grant: String,
        /// A parameter for the job, as key=value (repeatable).
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
    /// List jobs.
    List,
    /// Show one job's record.
    Show {
        /// Job id.
        id: String,
    },
}

/// Splits `--param key=value` at the first `=`; the key may not be empty.
fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not key=value")),
    }
}
