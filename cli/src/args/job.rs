//! `inland job`: run a job component under a grant, and inspect jobs.

use clap::Subcommand;
use std::path::PathBuf;

/// The job subcommands.
#[derive(Subcommand)]
pub enum JobCmd {
    /// Submit a job component (or a SQL file) under one of your grants and wait for it to end.
    Run {
        /// The job's .wasm component.
        #[arg(required_unless_present = "sql", conflicts_with = "sql")]
        wasm: Option<PathBuf>,
        /// A SQL file to run as a job: `-- output: NAME` before each SELECT;
        /// `--param k=v` binds its `$k` placeholders (`int:5`, `float:1.5`,
        /// `bool:true`, `null`, otherwise text).
        #[arg(long)]
        sql: Option<PathBuf>,
        /// The grant the job runs under.
        #[arg(long)]
        grant: String,
        /// A parameter for the job, as key=value (repeatable).
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// The component's source archive (tar.gz, tar or zip): reviewers read it with the outputs.
        #[arg(long)]
        source: Option<PathBuf>,
        /// Print the job id and return without waiting for it to end.
        #[arg(long)]
        no_wait: bool,
    },
    /// List the jobs you may see.
    List,
    /// Show one job: its state, refusal and released outputs.
    Show {
        /// Job id.
        id: String,
    },
    /// Save the source archive submitted with a job (reviewers).
    Source {
        /// Job id.
        id: String,
        /// Where to write it.
        #[arg(long)]
        to: PathBuf,
    },
    /// Stop a queued or running job.
    Cancel {
        /// Job id.
        id: String,
    },
    /// Print what approving a SQL file names: the SHA-256 of its statements.
    /// Under a grant that runs approved components only, an admin or
    /// reviewer approves this (POST /api/components/SHA256/approval) after
    /// reading the file. Needs no server.
    Fingerprint {
        /// The SQL file.
        #[arg(long)]
        sql: PathBuf,
    },
}

/// Splits `--param key=value` at the first `=`; the key may not be empty.
pub(crate) fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not key=value")),
    }
}
