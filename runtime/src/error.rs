//! Typed errors of the runtime. What the user did wrong is kept apart from
//! what the job hit and from the runtime's own failures.

use inland_files::FileError;
use inland_query::QueryError;
use inland_sandbox::{JobError, SandboxError};
use std::path::PathBuf;

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request or its input is wrong; the message says what to fix. Nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// A named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A rule of the domain forbids this (the gate, review rules); the message names the rule.
    #[error("refused: {0}")]
    Refused(String),
    /// A named thing exists already.
    #[error("{0} already exists")]
    Exists(String),
    /// The job was refused or stopped.
    #[error(transparent)]
    Job(#[from] JobError),
    /// The query engine failed outside a job's query (opening a session).
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The sandbox could not be set up.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// Reading or writing a file of the domain failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The domain's state database failed.
    #[error("state database: {0}")]
    Database(#[from] redb::Error),
    /// The state database is open in another process.
    #[error("{} is in use by another inland process", .0.display())]
    InUse(PathBuf),
    /// The evidence ledger failed.
    #[error("evidence ledger: {0}")]
    Ledger(#[source] inland_ledger::Error),
    /// Something the domain stored does not read back as written: the named
    /// file or record is damaged or was altered.
    #[error("{what} is damaged: {source}")]
    Damaged {
        /// The file or record.
        what: String,
        /// What is wrong with it.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A table could not be encoded or decoded (sealed outputs, released versions).
    #[error("table: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A record could not be encoded: a bug in Inland.
    #[error("encoding a record: {0}")]
    Encode(#[from] serde_json::Error),
    /// A bug in Inland: please report it.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Stored data `what` failed to read back because of `source`.
    pub(crate) fn damaged(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Damaged {
            what: what.into(),
            source: source.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<FileError> for Error {
    fn from(e: FileError) -> Self {
        Error::Io {
            path: e.path,
            source: e.source,
        }
    }
}
