//! `inland policy`: check, apply and show the domain policy.

use crate::args::PolicyCmd;
use crate::render::policy_problems;
use anyhow::Result;
use inland_runtime::Runtime;
use std::path::Path;

/// Notes on a valid policy (see `Policies::layout_notes`), on standard
/// error like a compiler's. They change nothing, so failing to make them
/// fails nothing either: a policy just applied stays applied and says so.
fn print_notes(rt: &Runtime, file: &Path) {
    match rt.policies().layout_notes(file) {
        Ok(notes) => notes.iter().for_each(|note| eprintln!("{note}")),
        Err(e) => tracing::warn!(error = %e, "the datasets' stored layout was not checked against the policy"),
    }
}

/// Runs one policy subcommand; a file with problems prints them all and fails.
pub fn run(rt: &Runtime, cmd: PolicyCmd) -> Result<()> {
    let policies = rt.policies();
    match cmd {
        PolicyCmd::Check { file } => match policies.check(&file)? {
            Ok(p) => {
                println!("{}: valid; {} datasets", file.display(), p.datasets.len());
                print_notes(rt, &file);
            }
            Err(list) => return Err(policy_problems(&list)),
        },
        PolicyCmd::Apply { file } => match policies.apply(&file)? {
            Ok(v) => {
                println!(
                    "applied {} as version {} (sha256 {})",
                    file.display(),
                    v.version,
                    v.sha256
                );
                print_notes(rt, &file);
            }
            Err(list) => return Err(policy_problems(&list)),
        },
        PolicyCmd::Show => {
            let (versions, text) = policies.versions()?;
            for v in &versions {
                println!("version {:<4} sha256 {}  {}", v.version, v.sha256, v.file);
            }
            match text {
                Some(t) => println!("\n# in force:\n{t}"),
                None => println!("no policy applied: jobs see every column of their grant's datasets"),
            }
        }
    }
    Ok(())
}
