//! What each command does, one file per noun: each takes its parsed
//! arguments, calls the domain's services and prints the outcome.

pub mod catalog;
pub mod dataset;
pub mod export;
pub mod feedback;
pub mod grant;
pub mod init;
pub mod job;
pub mod ledger;
pub mod operator;
pub mod output;
pub mod policy;
pub mod report;
pub mod review;
pub mod reviewer;
pub mod serve;
pub mod token;

use crate::args::{Cli, Command};
use anyhow::{Context, Result};
use inland_runtime::Runtime;
use std::path::Path;
use std::process::ExitCode;

/// Runs one parsed command line; the exit code says how it went (see [`crate::exit`]).
pub fn run(cli: Cli) -> Result<ExitCode> {
    let domain = cli.domain.as_path();
    match cli.command {
        Command::Init { dir, name } => init::run(dir.as_deref().unwrap_or(domain), &name)?,
        Command::Dataset(cmd) => dataset::run(&open(domain)?, cmd)?,
        Command::Operator(cmd) => operator::run(&open(domain)?, cmd)?,
        Command::Grant(cmd) => grant::run(&open(domain)?, cmd)?,
        Command::Job(cmd) => return job::run(&open(domain)?, cmd),
        Command::Output(cmd) => output::run(&open(domain)?, cmd)?,
        Command::Policy(cmd) => policy::run(&open(domain)?, cmd)?,
        Command::Reviewer(cmd) => reviewer::run(&open(domain)?, cmd)?,
        Command::Review(cmd) => review::run(&open(domain)?, cmd)?,
        Command::Export { id, to } => export::export(&open(domain)?, &id, &to)?,
        Command::VerifyExport { dir, public_key } => return export::verify(&dir, public_key),
        Command::Feedback(cmd) => feedback::run(&open(domain)?, cmd)?,
        Command::Catalog(cmd) => catalog::run(&open(domain)?, cmd)?,
        Command::Report(cmd) => report::run(&open(domain)?, cmd)?,
        Command::Ledger(cmd) => return ledger::run(domain, cmd),
        Command::Token(cmd) => token::run(&open(domain)?, cmd)?,
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
            insecure_http,
        } => serve::run(domain, listen, tls_cert.zip(tls_key), insecure_http)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the domain at `domain`, saying where when it cannot.
pub fn open(domain: &Path) -> Result<Runtime> {
    Runtime::open(domain).with_context(|| format!("opening the domain at {}", domain.display()))
}

/// A multi-threaded async runtime for the commands that drive jobs.
pub fn async_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
