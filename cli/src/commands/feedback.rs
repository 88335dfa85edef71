//! `inland feedback`: operators' data quality reports on datasets.

use crate::args::FeedbackCmd;
use anyhow::Result;
use inland_runtime::Runtime;

/// Runs one feedback subcommand.
pub fn run(rt: &Runtime, cmd: FeedbackCmd) -> Result<()> {
    let catalog = rt.catalog();
    match cmd {
        FeedbackCmd::Add {
            dataset,
            operator,
            text,
        } => {
            let fb = catalog.add_feedback(&dataset, &operator, &text)?;
            println!("recorded feedback {} on `{dataset}`", fb.id);
        }
        FeedbackCmd::List => {
            for fb in catalog.feedback()? {
                println!("{}  {:<20} {:<20} {}", fb.id, fb.dataset, fb.operator, fb.text);
            }
        }
    }
    Ok(())
}
