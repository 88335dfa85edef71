//! `inland reviewer`: register and list the release gate's reviewers.

use crate::args::ReviewerCmd;
use anyhow::Result;
use inland_runtime::Runtime;

/// Runs one reviewer subcommand.
pub fn run(rt: &Runtime, cmd: ReviewerCmd) -> Result<()> {
    let reviews = rt.reviews();
    match cmd {
        ReviewerCmd::Add { name, operator } => {
            let r = reviews.add_reviewer(&name, operator.as_deref())?;
            match r.operator {
                Some(op) => println!("reviewer `{}` registered (works for `{op}`)", r.name),
                None => println!("reviewer `{}` registered", r.name),
            }
        }
        ReviewerCmd::List => {
            for r in reviews.reviewers()? {
                println!("{:<24} {}", r.name, r.operator.unwrap_or_else(|| "-".into()));
            }
        }
    }
    Ok(())
}
