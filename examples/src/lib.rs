//! # inland-examples: synthetic datasets and example jobs for Inland
//!
//! - [`generate`]: deterministic synthetic public datasets in the spirit of
//!   the standard — an enterprise registry and a resident-services dataset —
//!   with identifiers that carry valid check characters, so that identifier
//!   detection has something real to find.
//! - [`jobs`]: the example analysis jobs, compiled to WebAssembly components
//!   by this crate's build script (it needs the `wasm32-wasip2` target).
//! - [`POLICY`]: the domain policy for the example datasets; [`SERVICES_POLICY`]
//!   the section for the service records.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod generate;
pub mod jobs;

/// The domain policy for the example datasets (`examples/policies/domain.toml`).
pub const POLICY: &str = include_str!("../policies/domain.toml");

/// The policy section for the service records (`examples/policies/services.toml`),
/// several rows per person: appended to [`POLICY`] where they are registered.
pub const SERVICES_POLICY: &str = include_str!("../policies/services.toml");
