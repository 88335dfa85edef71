//! Typed outcomes of the sandbox: why a job was refused or stopped, each
//! naming the limit or capability concerned, and the sandbox's own failures.

use std::time::Duration;

/// The sandbox could not be set up (engine, linker, ticker): a fault of the
/// host, not of any job.
#[derive(Debug, thiserror::Error)]
#[error("sandbox: {0}")]
pub struct SandboxError(pub String);

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
