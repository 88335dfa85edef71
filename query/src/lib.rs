//! # inland-query: the query path's enforcement over DataFusion
//!
//! Every SQL string a job sends is parsed, planned and optimized, then
//! checked by guards on the plan, rewritten where the policy asks (masking at
//! the scan, small-group suppression, contribution facts), and executed under
//! one bounded memory pool. This crate knows no domain and no sandbox: it is
//! handed the datasets ([`DatasetSource`]), the policy and the grant's
//! pseudonym key as values, so it can be tested and reused on its own.
//!
//! ## Modules
//! - `engine`: sessions, planning, guards in order, execution ([`QueryEngine`]).
//! - `guard`: the guard seam and its types ([`QueryGuard`], [`QueryScope`], [`QueryError`]).
//! - `source`: what the engine is handed about a dataset ([`DatasetSource`]).
//! - `policy_table`: deny and mask at the scan ([`PolicyTable`]).
//! - `function_rule`: the scalar functions a job may call.
//! - `aggregate_rule`: how aggregate-only data may be used, and the rewrite
//!   that counts entities and records contributions.
//! - `keep`: the small-group filter node placed right above an aggregation.
//! - `contrib`, `row_contrib`, `measured`: the hidden contribution aggregates;
//!   `measured::ordered`, `measured` where rows arrive in entity order, and
//!   `entity_order`, the plan rule that proves they do.
//! - `cell`: the roles of an aggregate result's columns, for the gate's facts.
//! - `hidden`: names of the columns the host adds and never shows.
//! - `answer`: suppression of what the plan's filter let through, and cell facts.
//! - `dp_release`: the `dp` mode's noisy release of one aggregation.
//! - `decimal_arith`: unchecked decimal arithmetic where no value can overflow.
//! - `eager_and`: filters' plain comparisons evaluated over whole batches.
//! - `join_filter_scan`: a join's filter applied inside the scan it probes.
//! - `shared`: one evaluation of an aggregation a query names more than once.
//! - `stored_key`: the entity key stored with a dataset's rows at registration.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod aggregate_rule;
mod answer;
mod cell;
mod contrib;
mod decimal_arith;
mod dp_order;
mod dp_release;
mod eager_and;
mod engine;
mod entity_order;
mod function_rule;
mod guard;
mod hidden;
mod join_filter_scan;
mod keep;
mod measured;
mod policy_table;
mod row_contrib;
mod shared;
mod source;
mod stored_key;

pub use aggregate_rule::AggregateGuard;
pub use answer::suppress;
pub use cell::{CellPlan, CellRole};
pub use dp_release::KEY_DELTA;
pub use engine::{PlannedQuery, QueryEngine};
pub use function_rule::{ALLOWED_SCALAR, FunctionGuard};
pub use guard::{
    DpScope, Guarded, NoisyFacts, PrivacyCost, QueryError, QueryGuard, QueryScope, ReadOnlyGuard, RunError,
};
pub use policy_table::{PolicyKeys, PolicyTable, visible_columns};
pub use source::{ColumnInfo, DatasetSource};
pub use stored_key::{EntityKeyer, STORED_ENTITY_KEY, StoredEntityKey, reserved_column, scan_type};

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
