//! `inland init`: create a new domain directory.

use anyhow::{Context, Result};
use inland_runtime::Domain;
use std::path::Path;

/// Creates the domain `name` at `dir`.
pub fn run(dir: &Path, name: &str) -> Result<()> {
    Domain::init(dir, name).with_context(|| format!("creating a domain at {}", dir.display()))?;
    println!("created domain `{name}` at {}", dir.display());
    Ok(())
}
