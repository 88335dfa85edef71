//! What `inland` accepts: the global options and the command nouns, with
//! each noun's subcommands in its own file. Closed sets of words are
//! [`clap::ValueEnum`]s, so clap checks them and lists the choices.

mod catalog;
mod dataset;
mod dev;
mod feedback;
mod grant;
mod job;
mod ledger;
mod new;
mod operator;
mod output;
mod policy;
mod report;
mod review;
mod reviewer;
mod token;

pub use catalog::CatalogCmd;
pub use dataset::{DatasetCmd, GradeArg};
pub use dev::DevArgs;
pub use feedback::FeedbackCmd;
pub use grant::{GrantCmd, TerminationReasonArg};
pub use job::JobCmd;
pub use ledger::{LedgerCmd, LedgerFormat};
pub use new::{LangArg, NewCmd};
pub use operator::{OperatorCmd, OperatorTypeArg};
pub use output::OutputCmd;
pub use policy::PolicyCmd;
pub use report::ReportCmd;
pub use review::{OverridableCheck, ReviewCmd};
pub use reviewer::ReviewerCmd;
pub use token::{RoleArg, TokenCmd};

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// The whole command line: the domain to work on and what to do there.
#[derive(Parser)]
#[command(
    name = "inland",
    version,
    about = "Trusted-domain runtime: public data stays in, reviewed aggregates come out"
)]
pub struct Cli {
    /// The domain directory (bootstrap and recovery commands open it directly).
    #[arg(long, global = true, env = "INLAND_DOMAIN", default_value = "./domain")]
    pub domain: PathBuf,
    /// The domain server everything people do goes through (the token is read from INLAND_TOKEN).
    #[arg(long, global = true, env = "INLAND_SERVER")]
    pub server: Option<String>,
    /// Read the bearer token from this file instead of INLAND_TOKEN.
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    /// Trust this PEM certificate authority for an https:// server (beside the system's roots).
    #[arg(long, global = true, env = "INLAND_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The command nouns, in the order `inland --help` lists them.
#[derive(Subcommand)]
pub enum Command {
    /// Create a new domain directory.
    Init {
        /// Where to create it (default: --domain).
        dir: Option<PathBuf>,
        /// A name for the domain.
        #[arg(long, default_value = "inland")]
        name: String,
    },
    /// Register and inspect datasets.
    #[command(subcommand)]
    Dataset(DatasetCmd),
    /// Register, approve and suspend operators.
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// Issue and inspect grants (authorization agreements).
    #[command(subcommand)]
    Grant(GrantCmd),
    /// Who the token proves (through the server).
    Whoami,
    /// Run, inspect and cancel jobs (through the server).
    #[command(subcommand)]
    Job(JobCmd),
    /// Inspect outputs held in quarantine (through the server; reviewers and admins).
    #[command(subcommand)]
    Output(OutputCmd),
    /// Check, apply and show the domain policy.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Register reviewers of the release gate.
    #[command(subcommand)]
    Reviewer(ReviewerCmd),
    /// Review quarantined outputs: the check report, lineage, votes (through the server).
    #[command(subcommand)]
    Review(ReviewCmd),
    /// Download a released output into DIR as a signed bundle (Parquet, CSV, manifest), through the server.
    Export {
        /// Output id (`<job id>/<name>`).
        id: String,
        /// A new (or empty) directory for the bundle.
        #[arg(long)]
        to: PathBuf,
    },
    /// Check an export bundle offline: signature and every file's hash. Exits 4 on a mismatch.
    VerifyExport {
        /// The bundle directory.
        dir: PathBuf,
        /// The domain's public key (hex, or a file holding it); default: the bundle's own `public.key`.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Data quality feedback on datasets.
    #[command(subcommand)]
    Feedback(FeedbackCmd),
    /// Publish the public catalog.
    #[command(subcommand)]
    Catalog(CatalogCmd),
    /// Usage and compliance reports from the evidence ledger.
    #[command(subcommand)]
    Report(ReportCmd),
    /// Read, prove and verify the evidence ledger.
    #[command(subcommand)]
    Ledger(LedgerCmd),
    /// Open the domain (finishing or rolling back what a stop left half
    /// done), verify the ledger and compare the state with it; exit 4 on
    /// tampering or any difference.
    Doctor,
    /// Issue, list and revoke the bearer tokens people use with the server (bootstrap).
    #[command(subcommand)]
    Token(TokenCmd),
    /// Try a job on this machine against dummy data made from a domain's
    /// published catalog, under its published policy, with the domain's own
    /// host, policy, suppression and gate code; everything is printed (the
    /// data is made up). Needs no domain and no server.
    Dev(DevArgs),
    /// Write the skeleton of a new job (Rust with the guest SDK beside it, or SQL).
    #[command(subcommand)]
    New(NewCmd),
    /// Run the domain server: the HTTP API people use, on loopback by default.
    Serve {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:7878")]
        listen: std::net::SocketAddr,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
        /// Serve plain HTTP on an address beyond loopback (tokens would cross the network in clear text).
        #[arg(long, conflicts_with = "tls_cert")]
        insecure_http: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, ValueEnum};

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// The words each closed set accepts, as clap spells them.
    fn words<T: ValueEnum>() -> Vec<String> {
        T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|p| p.get_name().to_string())
            .collect()
    }

    #[test]
    fn operator_types_are_the_runtimes_words() {
        assert_eq!(words::<OperatorTypeArg>(), ["comprehensive", "domain", "scenario"]);
        for v in OperatorTypeArg::value_variants() {
            let word = words::<OperatorTypeArg>()[*v as usize].clone();
            let parsed: inland_runtime::OperatorType = word.parse().unwrap();
            assert_eq!(parsed, inland_runtime::OperatorType::from(*v), "{word}");
        }
    }

    #[test]
    fn grades_are_the_runtimes_words() {
        assert_eq!(words::<GradeArg>(), ["general", "important", "core"]);
        for v in GradeArg::value_variants() {
            let word = words::<GradeArg>()[*v as usize].clone();
            let parsed: inland_runtime::Grade = word.parse().unwrap();
            assert_eq!(parsed, inland_runtime::Grade::from(*v), "{word}");
        }
    }

    #[test]
    fn termination_reasons_are_the_runtimes_words() {
        assert_eq!(
            words::<TerminationReasonArg>(),
            ["expired", "breach", "incident", "law", "agreement"]
        );
        for v in TerminationReasonArg::value_variants() {
            let word = words::<TerminationReasonArg>()[*v as usize].clone();
            let parsed: inland_runtime::TerminationReason = word.parse().unwrap();
            assert_eq!(parsed, inland_runtime::TerminationReason::from(*v), "{word}");
        }
    }

    #[test]
    fn overridable_checks_are_the_gates() {
        assert_eq!(words::<OverridableCheck>(), inland_gate::OVERRIDABLE);
        for v in OverridableCheck::value_variants() {
            assert_eq!(words::<OverridableCheck>()[*v as usize], v.as_str());
        }
    }

    #[test]
    fn ledger_formats() {
        assert_eq!(words::<LedgerFormat>(), ["jsonl", "openlineage"]);
    }

    #[test]
    fn readme_commands_parse() {
        let ok = [
            "inland operator add city-data-ops --type domain --qualification ISO --evidence cert.pdf",
            "inland dataset add residents residents.csv --type \"service records\" --grade general",
            "inland dataset add lineitem lineitem.parquet --sort-by l_shipdate",
            "inland grant terminate G --reason breach --note n",
            "inland review approve ID --reason T --override dominance --justification J",
            "inland --server http://127.0.0.1:7878 job run j.wasm --grant G --param k=v",
            "inland job cancel 0190",
            "inland whoami",
            "inland ledger export --format jsonl --to ./audit",
            "inland ledger export --format openlineage --to ./lineage",
            "inland ledger export --to ./audit",
            "inland token issue --role operator --name li --operator city-data-ops --expires-in 30",
            "inland token revoke 0123456789ab",
            "inland serve --listen 127.0.0.1:0",
        ];
        for line in ok {
            let argv = split(line);
            if let Err(e) = Cli::try_parse_from(&argv) {
                panic!("{line}: {e}");
            }
        }
        let bad = [
            "inland operator add x --type Domain",
            "inland dataset add d f.csv --grade secret",
            "inland grant terminate G --reason whim --note n",
            "inland review approve ID --reason T --override identifier-leakage",
            "inland ledger export --format csv --to d",
        ];
        for line in bad {
            let e = Cli::try_parse_from(split(line)).err().unwrap();
            assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue, "{line}");
            assert_eq!(e.exit_code(), 2, "{line}");
        }
    }

    /// Splits on spaces, keeping "quoted words" together.
    fn split(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (i, part) in line.split('"').enumerate() {
            if i % 2 == 1 {
                out.push(part.to_string());
            } else {
                out.extend(part.split_whitespace().map(String::from));
            }
        }
        out
    }
}
