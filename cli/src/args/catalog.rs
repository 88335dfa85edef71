//! `inland catalog`: publish the public catalog.

use clap::Subcommand;
use std::path::PathBuf;

/// The catalog subcommands.
#[derive(Subcommand)]
pub enum CatalogCmd {
    /// Write catalog.json and index.html describing the operable datasets (no data).
    Publish {
        /// Directory to write into.
        #[arg(long)]
        to: PathBuf,
    },
}
