//! `inland`: the command line of an Inland trusted domain.
//!
//! Exit codes: 0 success; 1 the command failed (the message says why);
//! 2 bad usage; 3 the job was refused, failed or was stopped; 4 the ledger
//! or an export failed verification (tampering).

use clap::Parser;
use inland_cli::args::Cli;
use inland_cli::{commands, exit};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// mimalloc, as DataFusion's own benchmark runner can use: a query's large, short-
/// lived buffers cost glibc's allocator page faults and trims on every run
/// (the 1M-row aggregate ran in half the time with it; benches/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_env("INLAND_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::FAILED)
        }
    }
}

/// `inland policy show | head` closes stdout early; the rest of the output
/// has nowhere to go, which is not an error. Rust's `println!` panics then:
/// end quietly with success instead of printing a panic.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
