//! What the domain keeps about a job: the request, how it ended, its record
//! and report.

use crate::release::output::{OutputRecord, QueryRecord};
use inland_policies::Label;
use inland_sandbox::{JobError, LogLine};
use serde::{Deserialize, Serialize};

/// A job to run.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// The component's bytes.
    pub wasm: Vec<u8>,
    /// The `--param key=value` pairs.
    pub params: Vec<(String, String)>,
    /// The submitting operator's identity.
    pub operator: String,
    /// The grant the job runs under.
    pub grant: String,
    /// SHA-256 of the component's source archive, stored before
    /// ([`crate::Jobs::store_source`]) by the same organization.
    pub source_sha256: Option<String>,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// `run` returned `Ok` and the outputs are in quarantine.
    Succeeded,
    /// Refused at admission: it never ran.
    Refused,
    /// It ran and failed or was stopped; its outputs were discarded.
    Failed,
}

/// What the domain keeps about a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Job id (time-ordered).
    pub id: String,
    /// The submitting operator.
    pub operator: String,
    /// The grant it ran under (as named, if refused).
    pub grant: String,
    /// SHA-256 of the component.
    pub module_sha256: String,
    /// SHA-256 of its source archive, when one was submitted with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha256: Option<String>,
    /// Submission parameters.
    pub params: Vec<(String, String)>,
    /// How it ended.
    pub status: JobStatus,
    /// Why it was refused, failed or stopped.
    pub error: Option<JobError>,
    /// When it was submitted (ms since the Unix epoch).
    pub started_at_ms: u64,
    /// When it ended.
    pub finished_at_ms: u64,
    /// How long it ran in the sandbox, limits included (0 if refused).
    pub run_ms: u64,
    /// The same in microseconds: instantiation and the run itself, for benchmarks.
    #[serde(default)]
    pub run_us: u64,
    /// Every query it ran.
    pub queries: Vec<QueryRecord>,
    /// Ids of its outputs in quarantine.
    pub outputs: Vec<String>,
    /// Its log: log lines, then captured stdout and stderr.
    pub log: Vec<LogLine>,
    /// Log lines dropped because the log was full.
    pub log_dropped: u64,
    /// The job's label — the highest label of anything it read — and why.
    #[serde(default)]
    pub label: Option<(Label, String)>,
    /// In the stored record only: the log, error, queries and label reason,
    /// sealed with the grant's key (hex); [`crate::Jobs::get`] opens them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_texts: Option<String>,
}

/// A job's record and its outputs, as returned to the submitter.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// The job record.
    pub job: JobRecord,
    /// The outputs it left in quarantine.
    pub outputs: Vec<OutputRecord>,
}
