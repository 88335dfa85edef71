//! End-to-end suites for Inland, as modules of one test binary.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod attacks;
mod datasets;
mod dev;
mod gate;
mod grants;
mod jobs;
mod ledger;
mod policy;
mod privacy;
mod publication;
mod query;
mod sql_jobs;
mod support;
