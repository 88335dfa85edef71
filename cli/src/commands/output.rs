//! `inland output`: inspect outputs held in quarantine.

use crate::args::OutputCmd;
use crate::render::{first_rows, print_json, short};
use anyhow::Result;
use inland_runtime::Runtime;

/// Runs one output subcommand.
pub fn run(rt: &Runtime, cmd: OutputCmd) -> Result<()> {
    let reviews = rt.reviews();
    match cmd {
        OutputCmd::List => {
            for o in reviews.outputs()? {
                println!("{:<60} {:>8} rows  sha256 {}", o.id, o.rows, short(&o.sha256, 16));
            }
        }
        OutputCmd::Show { id } => {
            print_json(&reviews.output(&id)?)?;
            println!("{}", first_rows(&reviews.output_table(&id)?, 20)?);
        }
    }
    Ok(())
}
