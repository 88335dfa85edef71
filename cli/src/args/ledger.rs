//! `inland ledger`: read, prove, verify and export the evidence ledger.

use clap::{Subcommand, ValueEnum};
use std::path::PathBuf;

/// The ledger subcommands.
#[derive(Subcommand)]
pub enum LedgerCmd {
    /// Recompute every hash and checkpoint signature; exit 4 on tampering.
    Verify {
        /// The trusted public key (hex); default: the domain's own key.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Print entries.
    Show {
        /// First entry to print.
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Only entries about this job.
        #[arg(long)]
        job: Option<String>,
    },
    /// Sign a checkpoint now.
    Checkpoint,
    /// Inclusion proof of an entry in the current tree.
    Proof {
        /// Entry index.
        entry: u64,
    },
    /// Consistency proof between two tree sizes.
    Consistency {
        /// Older tree size.
        old: u64,
        /// Newer tree size.
        new: u64,
    },
    /// Export for audit systems: entries, checkpoint and public key (jsonl), or OpenLineage run events.
    Export {
        /// What to write.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: LedgerFormat,
        /// Directory to write into.
        #[arg(long)]
        to: PathBuf,
    },
    /// Verify an export offline: only its files and a public key are used.
    VerifyExport {
        /// The export directory.
        dir: PathBuf,
        /// The trusted public key (hex); default: the export's own public.key.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Add a note to the record (for admins and auditors).
    Note {
        /// The note.
        text: String,
    },
    /// Compare every job, grant, dataset, output and privacy budget the state holds with the ledger; exit 4 on a difference.
    CheckState,
}

/// `--format` of `ledger export`: what an audit system is handed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LedgerFormat {
    /// Entries, a signed checkpoint and the public key: verifiable offline.
    #[value(name = "jsonl")]
    Jsonl,
    /// OpenLineage run events for the jobs, for lineage tools.
    #[value(name = "openlineage")]
    Openlineage,
}
