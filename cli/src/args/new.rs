//! `inland new`: the skeleton of a job, ready to build and try.

use clap::{Subcommand, ValueEnum};
use std::path::PathBuf;

/// What `inland new` makes.
#[derive(Subcommand)]
pub enum NewCmd {
    /// A job: a Rust crate with the guest SDK beside it, or a SQL file.
    Job {
        /// Its name: the directory made, and the crate's name.
        name: String,
        /// The language it is written in.
        #[arg(long, value_enum, default_value_t = LangArg::Rust)]
        lang: LangArg,
        /// Where to make it (the current directory by default).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// The languages a new job may be written in.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LangArg {
    /// A Rust crate for wasm32-wasip2, with the guest SDK vendored beside it.
    Rust,
    /// A SQL file of named statements, run by the SQL job Inland ships.
    Sql,
    /// A Python module, with the Python guest package and the WIT beside
    /// it, built with componentize-py.
    Python,
}
