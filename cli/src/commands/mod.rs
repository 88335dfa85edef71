//! What each command does, one file per noun: each takes its parsed
//! arguments, calls the domain's services and prints the outcome.

pub mod catalog;
pub mod dataset;
pub mod dev;
pub mod export;
pub mod feedback;
pub mod grant;
pub mod init;
pub mod job;
pub mod ledger;
pub mod new;
pub mod operator;
pub mod policy;
pub mod registry;
pub mod report;
pub mod review;
pub mod reviewer;
pub mod serve;
pub mod token;

use crate::args::{Cli, Command};
use crate::client::{Client, text};
use anyhow::{Context, Result, bail};
use inland_runtime::Runtime;
use std::path::Path;
use std::process::ExitCode;

/// Runs one parsed command line; the exit code says how it went (see [`crate::exit`]).
///
/// With `--server` (or `INLAND_SERVER`), what people do goes through the
/// server as the token's holder. Without it, only bootstrap, recovery and
/// the domain host's own registry work open the directory; the commands
/// that run jobs, read quarantine or decide on releases refuse, because on
/// the directory anyone could claim to be anyone.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let domain = cli.domain.as_path();
    let client = match &cli.server {
        Some(server) => Some(Client::connect(
            server,
            cli.token_file.as_deref(),
            cli.ca_cert.as_deref(),
        )?),
        None => None,
    };
    match (cli.command, client.as_ref()) {
        (Command::Whoami, Some(c)) => {
            let me = c.get(&["api", "whoami"], &[])?;
            println!(
                "{} ({}{}) with token {}",
                text(&me, "name"),
                text(&me, "role"),
                me["organization"]
                    .as_str()
                    .map(|o| format!(" of {o}"))
                    .unwrap_or_default(),
                text(&me, "token_id")
            );
        }
        (Command::Job(crate::args::JobCmd::Fingerprint { sql }), _) => job::fingerprint(&sql)?,
        (Command::Job(cmd), Some(c)) => return job::run(c, cmd),
        (Command::Output(cmd), Some(c)) => review::run_output(c, cmd)?,
        (Command::Review(cmd), Some(c)) => review::run(c, cmd)?,
        (Command::Export { id, to }, Some(c)) => export::export(c, &id, &to)?,
        (Command::Report(cmd), Some(c)) => report::run_remote(c, cmd)?,
        (Command::Ledger(cmd), Some(c)) => return ledger::run_remote(c, cmd),
        (Command::Token(cmd), Some(c)) => token::run_remote(c, cmd)?,
        (Command::Operator(cmd), Some(c)) => registry::operator(c, cmd)?,
        (Command::Grant(cmd), Some(c)) => registry::grant(c, cmd)?,
        (Command::Reviewer(cmd), Some(c)) => registry::reviewer(c, cmd)?,
        (Command::Policy(cmd), Some(c)) => registry::policy(c, cmd)?,
        (Command::VerifyExport { dir, public_key }, _) => return export::verify(&dir, public_key),
        (Command::Dev(args), _) => return dev::run(args),
        (Command::New(cmd), _) => new::run(cmd)?,
        (
            command @ (Command::Whoami
            | Command::Job(_)
            | Command::Output(_)
            | Command::Review(_)
            | Command::Export { .. }),
            None,
        ) => {
            bail!(
                "`inland {}` goes through the domain server: pass --server URL (or set INLAND_SERVER) \
                 with your token in INLAND_TOKEN. Only bootstrap and recovery open the domain directory.",
                noun(&command)
            )
        }
        (Command::Init { dir, name }, None) => init::run(dir.as_deref().unwrap_or(domain), &name)?,
        (Command::Dataset(cmd), None) => dataset::run(&open(domain)?, cmd)?,
        (Command::Operator(cmd), None) => operator::run(&open(domain)?, cmd)?,
        (Command::Grant(cmd), None) => grant::run(&open(domain)?, cmd)?,
        (Command::Policy(cmd), None) => policy::run(&open(domain)?, cmd)?,
        (Command::Reviewer(cmd), None) => reviewer::run(&open(domain)?, cmd)?,
        (Command::Feedback(cmd), None) => feedback::run(&open(domain)?, cmd)?,
        (Command::Catalog(cmd), None) => catalog::run(&open(domain)?, cmd)?,
        (Command::Report(cmd), None) => report::run(&open(domain)?, cmd)?,
        (Command::Ledger(cmd), None) => return ledger::run(domain, cmd),
        (Command::Doctor, None) => return ledger::doctor(domain),
        (Command::Token(cmd), None) => token::run(&open(domain)?, cmd)?,
        (
            Command::Serve {
                listen,
                tls_cert,
                tls_key,
                insecure_http,
            },
            None,
        ) => serve::run(domain, listen, tls_cert.zip(tls_key), insecure_http)?,
        (command, Some(_)) => bail!(
            "`inland {}` works on the domain directory on the domain host (with the server stopped); \
             the server does not offer it. Run it there without --server.",
            noun(&command)
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// The command's noun as typed, for messages.
fn noun(command: &Command) -> &'static str {
    match command {
        Command::Init { .. } => "init",
        Command::Dataset(_) => "dataset",
        Command::Operator(_) => "operator",
        Command::Grant(_) => "grant",
        Command::Whoami => "whoami",
        Command::Job(_) => "job",
        Command::Output(_) => "output",
        Command::Policy(_) => "policy",
        Command::Reviewer(_) => "reviewer",
        Command::Review(_) => "review",
        Command::Export { .. } => "export",
        Command::VerifyExport { .. } => "verify-export",
        Command::Feedback(_) => "feedback",
        Command::Catalog(_) => "catalog",
        Command::Report(_) => "report",
        Command::Ledger(_) => "ledger",
        Command::Doctor => "doctor",
        Command::Token(_) => "token",
        Command::Serve { .. } => "serve",
        Command::Dev(_) => "dev",
        Command::New(_) => "new",
    }
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
