//! `inland operator`: register, approve, suspend and inspect operators.

use crate::args::OperatorCmd;
use crate::render::print_json;
use anyhow::{Context, Result, bail};
use inland_runtime::{OperatorStatus, Qualification, Runtime};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Runs one operator subcommand.
pub fn run(rt: &Runtime, cmd: OperatorCmd) -> Result<()> {
    let governance = rt.governance();
    match cmd {
        OperatorCmd::Add {
            name,
            kind,
            statements,
            evidence,
        } => {
            let quals = qualifications(statements, evidence)?;
            let op = governance.add_operator(&name, kind.into(), quals)?;
            println!("registered operator `{}` ({:?}), pending approval", op.name, op.kind);
        }
        OperatorCmd::Approve { name } => {
            governance.set_operator_status(&name, OperatorStatus::Approved, None)?;
            println!("operator `{name}` approved");
        }
        OperatorCmd::Suspend { name, reason } => {
            governance.set_operator_status(&name, OperatorStatus::Suspended, Some(reason))?;
            println!("operator `{name}` suspended");
        }
        OperatorCmd::List => {
            for op in governance.operators()? {
                println!(
                    "{:<32} {:<14} {}",
                    op.name,
                    format!("{:?}", op.kind).to_lowercase(),
                    op.status.as_str()
                );
            }
        }
        OperatorCmd::Show { name } => print_json(&governance.operator(&name)?)?,
    }
    Ok(())
}

/// Pairs each `--qualification` with the `--evidence` file at the same
/// position; the record keeps the file's SHA-256, not the file.
pub(crate) fn qualifications(statements: Vec<String>, evidence: Vec<PathBuf>) -> Result<Vec<Qualification>> {
    if statements.len() != evidence.len() {
        bail!(
            "give one --evidence file for each --qualification ({} and {})",
            statements.len(),
            evidence.len()
        );
    }
    statements
        .into_iter()
        .zip(evidence)
        .map(|(statement, file)| {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            Ok(Qualification {
                statement,
                evidence_sha256: hex::encode(Sha256::digest(&bytes)),
            })
        })
        .collect()
}
