//! Typed errors of the runtime. What the user did wrong is kept apart from
//! what the job hit and from the runtime's own failures.

use std::path::PathBuf;
use std::time::Duration;

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
    Storage(String),
    /// A bug in Inland: please report it.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Why a job was refused at admission or stopped while running. Each names
/// the limit or capability concerned, so the job's author can act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobError {
    /// The operator or grant does not allow this job now.
    #[error("not authorized: {reason}")]
    NotAuthorized {
        /// Which check failed.
        reason: String,
    },
    /// The file is not a valid WebAssembly component.
    #[error("invalid module: {message}")]
    InvalidModule {
        /// What is wrong with it.
        message: String,
    },
    /// The component does not implement the `inland:job` world.
    #[error("wrong world: {message}")]
    WrongWorld {
        /// What is missing or different.
        message: String,
    },
    /// The component asks for a capability jobs are never given.
    #[error("capability denied: the job imports `{import}`; {why}")]
    CapabilityDenied {
        /// The import that was refused.
        import: String,
        /// Why jobs do not get it.
        why: String,
    },
    /// The job ran past its wall-clock limit.
    #[error("time limit: the job ran longer than {}s", limit.as_secs_f64())]
    Timeout {
        /// The limit it hit.
        limit: Duration,
    },
    /// The job tried to grow its memory past the limit.
    #[error("memory limit: the job tried to use more than {limit_bytes} bytes of memory")]
    OutOfMemory {
        /// The limit it hit.
        limit_bytes: u64,
    },
    /// The job emitted more output than allowed.
    #[error("output limit: the job emitted more than {limit_bytes} bytes of output")]
    OutputLimit {
        /// The limit it hit.
        limit_bytes: u64,
    },
    /// The job overflowed its stack.
    #[error("stack limit: the job overflowed its stack")]
    StackOverflow,
    /// The job panicked; the message is the panic's own.
    #[error("the job panicked: {message}")]
    Panicked {
        /// The panic message from the job's stderr.
        message: String,
    },
    /// The job trapped for another reason.
    #[error("the job trapped: {message}")]
    Trapped {
        /// The trap.
        message: String,
    },
    /// The job returned an error.
    #[error("the job failed: {message}")]
    Failed {
        /// The job's own error message.
        message: String,
    },
    /// The job's grant was terminated while it ran.
    #[error("stopped: grant `{grant}` was terminated")]
    GrantTerminated {
        /// The grant.
        grant: String,
    },
    /// The domain is running as many jobs as it is configured for.
    #[error("busy: {message}")]
    Busy {
        /// Which resource is exhausted.
        message: String,
    },
}
