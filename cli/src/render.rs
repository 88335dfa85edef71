//! How the CLI shows things to a person: JSON records and policy problems.

use anyhow::{Result, anyhow};
use inland_runtime::Diagnostic;
use serde::Serialize;

/// Prints a record as indented JSON: what `show` commands, proofs and
/// reports give, complete and readable by tools.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints every policy problem on stderr (each with its file, line and
/// column) and returns the error the command then fails with.
pub fn policy_problems(list: &[Diagnostic]) -> anyhow::Error {
    for d in list {
        eprintln!("{d}");
    }
    anyhow!("{} problem(s) in the policy; nothing was changed", list.len())
}
