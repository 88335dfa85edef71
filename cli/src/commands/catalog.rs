//! `inland catalog`: publish the public catalog.

use crate::args::CatalogCmd;
use anyhow::Result;
use inland_runtime::Runtime;

/// Runs one catalog subcommand.
pub fn run(rt: &Runtime, cmd: CatalogCmd) -> Result<()> {
    match cmd {
        CatalogCmd::Publish { to } => {
            let listed = rt.evidence().publish_catalog(&to)?;
            println!("published {} datasets to {}", listed.len(), to.display());
        }
    }
    Ok(())
}
