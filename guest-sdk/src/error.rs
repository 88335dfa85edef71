//! The one error type a job sees.

use crate::bindings::inland::job::host;
use std::fmt;

/// Why a request to the host, or the job's own decoding, failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A domain rule refused the request; the text names the rule.
    Refused(String),
    /// Malformed SQL, an unknown dataset or column, or a bad table.
    Invalid(String),
    /// A resource limit of the query was reached.
    Limit(String),
    /// The host failed; not the job's fault.
    Host(String),
    /// Arrow data could not be encoded or decoded inside the job.
    Arrow(String),
    /// A parameter is missing or does not parse.
    Param(String),
    /// The job's own failure, with its message.
    Job(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Refused(m) => write!(f, "refused: {m}"),
            Error::Invalid(m) => write!(f, "invalid: {m}"),
            Error::Limit(m) => write!(f, "limit reached: {m}"),
            Error::Host(m) => write!(f, "host error: {m}"),
            Error::Arrow(m) => write!(f, "arrow: {m}"),
            Error::Param(m) => write!(f, "parameter: {m}"),
            Error::Job(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<host::Error> for Error {
    fn from(e: host::Error) -> Self {
        match e {
            host::Error::Refused(m) => Error::Refused(m),
            host::Error::Invalid(m) => Error::Invalid(m),
            host::Error::Limit(m) => Error::Limit(m),
            host::Error::Internal(m) => Error::Host(m),
        }
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Error::Arrow(e.to_string())
    }
}

impl From<String> for Error {
    fn from(m: String) -> Self {
        Error::Job(m)
    }
}

impl From<&str> for Error {
    fn from(m: &str) -> Self {
        Error::Job(m.to_string())
    }
}
