//! # inland-sandbox: wasmtime for hostile, multi-tenant jobs
//!
//! A job is a WebAssembly component of the `inland:job` world. This crate
//! admits it (size, format, import allow-list, world), compiles it once into
//! an authenticated on-disk cache, and runs it in a fresh store under memory,
//! time, stack, output and instance limits, with coarse clocks and no files,
//! network or environment. Its queries reach the domain through the
//! [`QueryBackend`] trait; this crate knows nothing of SQL or policy.
//!
//! ## Modules
//! - `runner`: engine, linker, pooling, epoch ticker, admission and runs ([`Sandbox`]).
//! - `imports`: the import allow-list ([`check_import`]).
//! - `cache`: the HMAC-authenticated compile cache.
//! - `host`: the host side of the WIT world and the [`QueryBackend`] seam;
//!   `host::cells`, the row interface (a batch as rows of cells and back).
//! - `collector`: emitted tables under the output cap ([`OutputCollector`]).
//! - `log`: the bounded job log ([`LogLine`]).
//! - `clock`: wall and monotonic clocks too coarse for timing attacks.
//! - `limits`: the `[limits]` a domain sets ([`Limits`]).
//! - `error`: why a job was refused or stopped ([`JobError`]).
#![deny(missing_docs)]

mod cache;
mod clock;
mod collector;
mod error;
mod host;
mod imports;
mod limits;
mod log;
mod runner;

pub use collector::{Collected, OutputCollector, validate_output_name};
pub use error::{JobError, SandboxError};
pub use host::{Answer, BatchStream, Bound, DatasetListing, QueryBackend, QueryFailure, placeholder_name};
pub use imports::check_import;
pub use limits::Limits;
pub use log::LogLine;
pub use runner::{EPOCH_TICK, JobRun, JobSetup, Prepared, Sandbox};
