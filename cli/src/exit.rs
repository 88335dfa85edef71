//! The exit codes `inland` promises to scripts (0 is success; 2, bad usage,
//! is clap's own).

/// The command itself failed; the message on stderr says why.
pub const FAILED: u8 = 1;
/// The job was refused, failed or was stopped.
pub const JOB_NOT_SUCCEEDED: u8 = 3;
/// The ledger, a ledger export or an export bundle failed verification.
pub const TAMPERED: u8 = 4;
