//! The domain server end to end, through a real server on a loopback port:
//! who may do what, what operators are shown, and how bad input is answered.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

mod admin;
mod bad_input;
mod browser;
mod busy;
mod console;
mod console_admin;
mod isolation;
mod leaks;
mod registry;
mod review;
mod roles;
mod sources;
mod sql_jobs;
mod tls;
mod tokens;
