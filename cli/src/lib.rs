//! # inland-cli: the `inland` command
//!
//! A thin binary over the domain's services (`inland-runtime`), laid out as
//! ripgrep is: what the command line accepts in [`args`] (one file per noun),
//! what each command does in [`commands`] (one file per noun), and what a
//! person reads in [`render`]; what people do reaches the domain server
//! through [`client`]. `main.rs` only sets up the process and maps the
//! outcome to an [`exit`] code.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod args;
pub mod client;
pub mod commands;
pub mod exit;
pub mod render;
