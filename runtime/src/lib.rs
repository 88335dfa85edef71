//! # inland-runtime: the trusted-domain runtime
//!
//! Public data stays in the domain; operators' analysis jobs come in as
//! WebAssembly components and run next to it; only outputs leave, and only
//! through the release gate.
//!
//! ## Concepts
//! - A **domain** ([`Domain`]) is a directory: configuration, datasets,
//!   quarantine, state and caches.
//! - A **dataset** ([`DatasetRecord`]) is a registered table, stored as Parquet.
//! - A **job** is a component of the `inland:job` world; [`Runtime::run_job`]
//!   admits it, runs it in the sandbox, and keeps its outputs in quarantine
//!   ([`OutputRecord`]).
//! - Every step is an [`Event`] sent to one [`EventSink`]: the domain's
//!   evidence [`EventLedger`], a signed Merkle log.
//!
//! ## Architecture
//! `catalog` registers datasets; `query` plans and checks every SQL string a
//! job sends ([`QueryGuard`] is the seam for domain policy); `sandbox` runs
//! components under wasmtime with hard limits; `host` answers a job's imports;
//! `output` collects and quarantines tables; `job` ties them together.
//!
//! ## Example
//! ```no_run
//! # async fn demo() -> inland_runtime::Result<()> {
//! use inland_runtime::{Domain, JobRequest, Runtime};
//! let dir = std::path::Path::new("/tmp/my-domain");
//! Domain::init(dir, "example")?;
//! let runtime = Runtime::open(dir)?;
//! runtime.register_dataset("residents", "residents.csv".as_ref(), "residents")?;
//! let wasm = std::fs::read("district_stats.wasm").map_err(|e| inland_runtime::Error::Invalid(e.to_string()))?;
//! let request = JobRequest { wasm, params: vec![], operator: "city-data-ops".into(), grant: "g-1234".into() };
//! let report = runtime.run_job(request).await?;
//! println!("{:?}", report.job.status);
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod aggregate_rule;
mod catalog;
mod clock;
mod contrib;
mod date;
mod decimal_arith;
pub mod demo;
mod domain;
mod error;
mod events;
mod export;
mod fsutil;
mod function_rule;
mod gating;
mod governance;
mod host;
mod id_index;
mod job;
mod keep;
mod keys;
pub mod ledger;
mod output;
mod policy_store;
mod policy_table;
mod publication;
mod query;
mod release;
mod review;
pub mod review_view;
mod row_contrib;
mod sandbox;
mod state;
mod uniqueness;

pub use catalog::{
    CatalogInfo, ColumnInfo, DatasetMeta, DatasetRecord, DatasetStatus, Grade, validate_name as validate_dataset_name,
};
pub use date::Date;
pub use domain::{CONFIG_FILE, Domain, DomainConfig, Limits};
pub use error::{Error, JobError, Result};
pub use events::{Event, EventRecord, EventSink, MemorySink};
pub use export::{ExportCheck, Manifest, ManifestFile, verify_bundle};
pub use governance::{
    Grant, GrantRequest, GrantStatus, MAX_TERM_YEARS, Operator, OperatorStatus, OperatorType, Qualification,
    TerminationReason,
};
pub use host::{LogLine, QueryRecord};
pub use inland_gate::{CheckResult, GateReport, Remedy, Status, Verdict};
pub use inland_policies::{Diagnostic, Label, Policy};
pub use job::{JobRecord, JobReport, JobRequest, JobStatus, Runtime};
pub use ledger::{Checkpoint, EventLedger, VerifyReport};
pub use output::{ExportRecord, OutputRecord, Release, validate_output_name};
pub use policy_store::PolicyVersion;
pub use publication::{ComplianceLine, Feedback, UsageReport};
pub use query::{Guarded, PlannedQuery, QueryEngine, QueryError, QueryGuard, QueryScope, ReadOnlyGuard};
pub use release::ExportOutcome;
pub use review::{Decision, Review, ReviewState, Reviewer, Vote, VoteRequest, visible_votes};
pub use sandbox::EPOCH_TICK;

/// A small deterministic generator for tests that need many varied values.
#[cfg(test)]
pub(crate) fn test_rng(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
