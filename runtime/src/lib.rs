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
//! - A **job** is a component of the `inland:job` world; [`Jobs::run`]
//!   admits it, runs it in the sandbox, and keeps its outputs in quarantine
//!   ([`OutputRecord`]).
//! - Every step is an [`Event`] sent to one [`EventSink`]: the domain's
//!   evidence [`EventLedger`], a signed Merkle log.
//!
//! ## Architecture
//! This crate is the domain stage of the path of a job. Below it,
//! `inland-query` plans and checks every SQL string ([`QueryGuard`] is the
//! seam for domain policy) and `inland-sandbox` runs components under
//! wasmtime with hard limits; above it, the `inland` CLI (and next the
//! server) is handed one service at a time by the [`Runtime`] facade.
//!
//! Modules, dependencies pointing down the list:
//! - `runtime`: the facade; hands out the services below.
//! - `evidence`: the [`Evidence`] service — reports from the ledger and the public catalog.
//! - `jobs`: the [`Jobs`] service — admission, the run, the query side handed
//!   to the sandbox, records, and stopping a terminated grant's jobs.
//! - `release`: the [`Reviews`] service — quarantine (`vault`), output records,
//!   the gate's inputs (`gating`), reviews and votes, released versions, exports.
//! - `governance`: the [`Catalog`], [`Governance`] and [`Policies`] services —
//!   datasets and their uniqueness proofs, the identifier index, operators,
//!   grants, policy versions.
//! - `access`: the [`Access`] service — bearer tokens and the principals they prove.
//! - `context`: what every service shares (domain, sandbox, engine, keys, sink).
//! - `ledger`, `events`: the evidence ledger adapter and the events it records.
//! - `keys`, `state`, `domain`, `date`, `error`: grant keys and rotation, the
//!   state database, the domain directory, calendar dates, typed errors.
//!
//! ## Example
//! ```no_run
//! # async fn demo() -> inland_runtime::Result<()> {
//! use inland_runtime::{Domain, JobRequest, Runtime};
//! let dir = std::path::Path::new("/tmp/my-domain");
//! Domain::init(dir, "example")?;
//! let runtime = Runtime::open(dir)?;
//! runtime.catalog().register("residents", "residents.csv".as_ref(), "residents")?;
//! let wasm = std::fs::read("district_stats.wasm").map_err(|e| inland_runtime::Error::Invalid(e.to_string()))?;
//! let request = JobRequest { wasm, params: vec![], operator: "city-data-ops".into(), grant: "g-1234".into(), source_sha256: None };
//! let report = runtime.jobs().run(request).await?;
//! println!("{:?}", report.job.status);
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod access;
mod context;
mod date;
pub mod dev;
mod domain;
mod error;
mod events;
mod evidence;
mod governance;
mod jobs;
mod keys;
pub mod ledger;
mod order;
mod privacy;
mod quota;
mod recovery;
mod release;
mod runtime;
mod state;

pub use access::policy::{AccessPolicyVersion, MAX_POLICY_BYTES};
pub use access::{Access, IssuedToken, Principal, Rejected, Role, TOKEN_PREFIX, TokenRecord};
pub use date::Date;
pub use domain::{CONFIG_FILE, Domain, DomainConfig, Limits};
pub use error::{Error, Result};
pub use events::{Event, EventRecord, EventSink, JobOutcome, MemorySink};
pub use evidence::Evidence;
pub use evidence::publication::{ComplianceLine, UsageReport};
pub use evidence::state_check::{StateCheck, StateDifference};
pub use governance::catalog::{
    CatalogInfo, DatasetMeta, DatasetRecord, DatasetStatus, Feedback, Grade, Progress, ProgressEvent,
    validate_name as validate_dataset_name,
};
pub use governance::components::ComponentApproval;
pub use governance::operators::{
    Grant, GrantRequest, GrantStatus, MAX_TERM_YEARS, Operator, OperatorStatus, OperatorType, Qualification,
    TerminationReason,
};
pub use governance::policy_store::PolicyVersion;
pub use governance::{Catalog, Governance, Policies};
pub use inland_gate::{CheckResult, DP_MOOT, GateReport, OVERRIDABLE, Remedy, Status, Verdict};
pub use inland_policies::{Diagnostic, Label, Policy};
pub use inland_query::{
    ColumnInfo, DatasetSource, DpScope, Guarded, PlannedQuery, PolicyKeys, PrivacyCost, QueryEngine, QueryError,
    QueryGuard, QueryScope, ReadOnlyGuard, STORED_ENTITY_KEY, StoredEntityKey,
};
pub use inland_sandbox::{EPOCH_TICK, JobError, LogLine, validate_output_name};
pub use jobs::budget::spent_per_grant;
pub use jobs::sources::SourceRecord;
pub use jobs::sql_job;
pub use jobs::{JobRecord, JobReport, JobRequest, JobStatus, Jobs, MAX_NOTE_CHARS};
pub use ledger::{Checkpoint, EventLedger, VerifyReport};
pub use privacy::{BudgetView, DISPLAY_DELTA, DpBudget, Privacy};
pub use quota::JobQuota;
pub use recovery::Recovery;
pub use release::export::{
    Approval, CheckSummary, ExportCheck, Manifest, ManifestFile, TABLE_CSV, TABLE_PARQUET, verify_bundle, write_bundle,
};
pub use release::output::{ExportRecord, OutputRecord, QueryRecord, Release};
pub use release::review::{Decision, Review, ReviewState, Reviewer, Vote, VoteRequest, visible_votes};
pub use release::review_view;
pub use release::{ExportOutcome, Reviews};
pub use runtime::Runtime;
