//! `inland dataset`: register, propose, approve and inspect datasets.

use clap::{Subcommand, ValueEnum};
use inland_runtime::Grade;
use std::path::PathBuf;

/// The dataset subcommands.
#[derive(Subcommand)]
pub enum DatasetCmd {
    /// Register a CSV or Parquet file as a dataset.
    Add {
        /// Dataset name (lower-case letters, digits, `_`).
        name: String,
        /// The CSV (with a header row) or Parquet file.
        file: PathBuf,
        /// What the dataset holds.
        #[arg(long, default_value = "")]
        description: String,
        /// Catalog: the kind of data (e.g. registry, statistics).
        #[arg(long = "type", default_value = "")]
        kind: String,
        /// Catalog: the body the data comes from.
        #[arg(long, default_value = "")]
        source_org: String,
        /// Catalog: how often it is updated.
        #[arg(long, default_value = "")]
        update_frequency: String,
        /// Catalog: restrictions on its use.
        #[arg(long, default_value = "")]
        restrictions: String,
        /// Grade (core data can never be granted).
        #[arg(long, value_enum, default_value = "general")]
        grade: GradeArg,
        /// Store the rows sorted by these columns (comma-separated, most
        /// significant first): queries filtering on them skip whole row groups.
        #[arg(long, value_delimiter = ',')]
        sort_by: Vec<String>,
        /// For records (several rows per person): the entity column the
        /// policy will name. Its hidden key is stored beside the rows, in
        /// the key's order, so queries count people without hashing and
        /// sorting them. Not with --sort-by.
        #[arg(long, value_name = "COLUMN", conflicts_with = "sort_by")]
        entity: Option<String>,
    },
    /// An operator proposes its own (social) dataset; no job sees it until approved.
    Propose {
        /// The proposing operator.
        #[arg(long)]
        operator: String,
        /// Dataset name.
        name: String,
        /// The CSV or Parquet file.
        file: PathBuf,
        /// What the dataset holds.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Approve a proposed dataset: its operator's grants may then include it.
    Approve {
        /// Dataset name.
        name: String,
        /// Classify it at the same time with this policy file (it must have a
        /// `[datasets.NAME]` section); a bad file changes nothing.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// List datasets.
    List,
    /// Show one dataset and its schema.
    Show {
        /// Dataset name.
        name: String,
    },
}

/// `--grade`: the runtime's [`Grade`] under GB/T 43697-2024, in the words its records use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GradeArg {
    /// General data.
    #[value(name = "general")]
    General,
    /// Important data.
    #[value(name = "important")]
    Important,
    /// Core data: never operable.
    #[value(name = "core")]
    Core,
}

impl From<GradeArg> for Grade {
    fn from(grade: GradeArg) -> Self {
        match grade {
            GradeArg::General => Grade::General,
            GradeArg::Important => Grade::Important,
            GradeArg::Core => Grade::Core,
        }
    }
}
