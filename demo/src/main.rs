//! `inland-demo`: what `make demo` runs. Sets up a domain with the example
//! datasets and runs every example job, useful and hostile, through it.

use anyhow::{Context, Result};
use clap::Parser;
use inland_demo::{DemoOptions, run};
use std::path::PathBuf;
use std::process::ExitCode;

/// Set up a temporary domain with the examples and run every example job.
#[derive(Parser)]
#[command(name = "inland-demo", version)]
struct Args {
    /// Rows per example dataset.
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Keep the demo domain in this directory instead of a temporary one.
    #[arg(long)]
    keep: Option<PathBuf>,
}

fn main() -> ExitCode {
    match demo(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn demo(args: Args) -> Result<()> {
    let temp;
    let dir = match args.keep {
        Some(d) => d,
        None => {
            temp = tempfile::tempdir().context("creating a temporary directory")?;
            temp.path().join("domain")
        }
    };
    let options = DemoOptions {
        rows: args.rows,
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let summary = runtime.block_on(run(&dir, &options, &mut std::io::stdout()))?;
    let ok = summary.jobs.iter().filter(|(_, state)| state == "succeeded").count();
    println!(
        "\n{} example jobs: {ok} succeeded, {} refused or stopped",
        summary.jobs.len(),
        summary.jobs.len() - ok
    );
    Ok(())
}
