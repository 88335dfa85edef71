//! `inland dev`: try a job on dummy data before submitting it.

use clap::Args;
use std::path::PathBuf;

/// What `inland dev` runs, and on what.
#[derive(Args)]
pub struct DevArgs {
    /// The job's .wasm component.
    #[arg(required_unless_present = "sql", conflicts_with = "sql")]
    pub wasm: Option<PathBuf>,
    /// A SQL file to run as a job (`-- output: NAME` before each SELECT).
    #[arg(long)]
    pub sql: Option<PathBuf>,
    /// The domain's published catalog: the directory `inland catalog publish` wrote.
    #[arg(long)]
    pub catalog: PathBuf,
    /// Dummy rows per dataset.
    #[arg(long, default_value_t = 1000)]
    pub rows: usize,
    /// Seed of the dummy data (the same seed, the same rows).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A parameter for the job, as key=value (repeatable); a SQL job binds `$key`.
    #[arg(long = "param", value_parser = super::job::parse_param)]
    pub params: Vec<(String, String)>,
}
