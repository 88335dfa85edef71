//! # inland-policies: the rules of an Inland domain, without any I/O
//!
//! Everything here is a pure decision over values, so it can be tested in
//! isolation and reused by the runtime, the release gate and offline tools:
//!
//! - [`Label`]: what a result may become, from public to identifying. A job's
//!   label only goes up, and outputs inherit it.
//! - [`identifiers`]: validators for Chinese identifier formats (resident ID
//!   numbers, unified social credit codes, mobile numbers, bank cards), used
//!   both to generate realistic synthetic data and to catch leaks at the gate.
//! - [`Name`]: the one rule per kind for names of datasets, outputs,
//!   operators and reviewers.
//! - [`layout`]: notes on a policy that the stored layout makes slow.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod identifiers;
mod label;
pub mod layout;
mod name;
pub mod policy;

pub use label::Label;
pub use name::{Name, NameError, NameKind};
pub use policy::{Diagnostic, Policy};
