//! # inland-guest: write analysis jobs for an Inland trusted domain
//!
//! An Inland job is a WebAssembly component that runs inside the domain, next
//! to the data. It can *query* the datasets its grant allows, *emit* output
//! tables, and *log*. It cannot open files or sockets, read the environment, or
//! send anything anywhere: outputs go to quarantine, and only reviewed,
//! checked aggregates leave the domain through the release gate.
//!
//! The host decides everything — which datasets and columns exist for the job,
//! how values are masked, which groups are suppressed — so the job sees the
//! same data whatever SQL it writes.
//!
//! ## Concepts
//! - [`query`] runs one read-only SQL statement and collects the result as
//!   Arrow [`RecordBatch`]es; [`query_stream`] reads it batch by batch.
//! - [`emit`] hands a named table to the host.
//! - [`log!`] writes to the job's log; `println!` works too (stdout is captured).
//! - [`Params`] are the `--param key=value` pairs given at submission.
//! - [`job!`] declares the entry point.
//!
//! ## Example
//! ```no_run
//! use inland_guest::{emit, job, log, query_with, Error, Params, Value};
//!
//! fn district_counts(params: Params) -> Result<(), Error> {
//!     let min_age: i64 = params.get_or("min_age", 18)?;
//!     // `$min_age` is bound by the host after parsing: a value, never SQL.
//!     let batches = query_with(
//!         "SELECT district, count(*) AS residents, avg(income) AS avg_income \
//!          FROM residents WHERE age >= $min_age GROUP BY district ORDER BY district",
//!         &[("min_age", Value::Integer(min_age))],
//!     )?;
//!     let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
//!     log!("{rows} districts");
//!     for batch in &batches {
//!         emit("district_counts", batch)?;
//!     }
//!     Ok(())
//! }
//!
//! job!(district_counts);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` in a `cdylib`
//! crate and submit the `.wasm` file with `inland job run`.
#![deny(unsafe_code)]
#![deny(missing_docs)]

// Lets the generated code name this crate the way job crates do.
extern crate self as inland_guest;

#[doc(hidden)]
pub mod bindings {
    #![allow(missing_docs, unsafe_code, clippy::all)]
    wit_bindgen::generate!({
        path: "wit",
        world: "job",
        pub_export_macro: true,
        export_macro_name: "__inland_export_job",
        default_bindings_module: "inland_guest::__private::bindings",
        runtime_path: "inland_guest::__private::wit_bindgen::rt",
    });
}

mod error;
mod ipc;
mod params;

pub use arrow_array::{self, RecordBatch};
pub use arrow_schema::{self, SchemaRef};
pub use error::Error;
pub use params::Params;

use bindings::inland::job::host;

/// Implementation details used by the [`job!`] macro; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use wit_bindgen;

    /// Runs a job function with decoded parameters and turns its error into text for the host.
    pub fn run_entry<E: std::fmt::Display>(
        params: Vec<(String, String)>,
        f: impl FnOnce(crate::Params) -> Result<(), E>,
    ) -> Result<(), String> {
        f(crate::Params::from_pairs(params)).map_err(|e| e.to_string())
    }
}

/// Declares the function that runs when the job is submitted.
///
/// The function takes [`Params`] and returns `Result<(), E>` for any `E` that
/// implements `Display`; an `Err` fails the job with that message.
#[macro_export]
macro_rules! job {
    ($entry:path) => {
        struct __InlandJob;
        impl $crate::__private::bindings::Guest for __InlandJob {
            fn run(params: ::std::vec::Vec<(::std::string::String, ::std::string::String)>)
                -> ::std::result::Result<(), ::std::string::String> {
                $crate::__private::run_entry(params, $entry)
            }
        }
        $crate::__private::bindings::__inland_export_job!(__InlandJob with_types_in $crate::__private::bindings);
    };
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Detail for the job's author.
    Debug,
    /// Normal progress.
    Info,
    /// Something the author should look at.
    Warn,
    /// A failure the job is reporting.
    Error,
}

/// Writes one line to the job's log at the given level.
pub fn log(level: Level, message: &str) {
    let level = match level {
        Level::Debug => host::Level::Debug,
        Level::Info => host::Level::Info,
        Level::Warn => host::Level::Warn,
        Level::Error => host::Level::Error,
    };
    host::log(level, message);
}

/// Logs a formatted line: `log!("{n} rows")` at info, or `log!(warn: "...")`
/// with a level (`debug`, `info`, `warn`, `error`).
#[macro_export]
macro_rules! log {
    (debug: $($arg:tt)+) => { $crate::log($crate::Level::Debug, &::std::format!($($arg)+)) };
    (info: $($arg:tt)+) => { $crate::log($crate::Level::Info, &::std::format!($($arg)+)) };
    (warn: $($arg:tt)+) => { $crate::log($crate::Level::Warn, &::std::format!($($arg)+)) };
    (error: $($arg:tt)+) => { $crate::log($crate::Level::Error, &::std::format!($($arg)+)) };
    ($($arg:tt)+) => { $crate::log($crate::Level::Info, &::std::format!($($arg)+)) };
}

/// A column of a visible dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name, as used in SQL.
    pub name: String,
    /// Arrow data type as Arrow prints it.
    pub data_type: String,
    /// Whether the column may hold nulls.
    pub nullable: bool,
}

/// A dataset the job may query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Table name, as used in SQL.
    pub name: String,
    /// What the dataset holds, from the catalog.
    pub description: String,
    /// The columns this job can see (denied columns are absent).
    pub columns: Vec<Column>,
}

/// Lists the datasets this job may query, with the columns it can see.
pub fn datasets() -> Vec<Dataset> {
    host::list_datasets()
        .into_iter()
        .map(|d| Dataset {
            name: d.name,
            description: d.description,
            columns: d
                .columns
                .into_iter()
                .map(|c| Column {
                    name: c.name,
                    data_type: c.data_type,
                    nullable: c.nullable,
                })
                .collect(),
        })
        .collect()
}

/// A query result read one batch at a time; iterate it to get [`RecordBatch`]es.
pub struct Rows {
    inner: host::Rows,
    schema: SchemaRef,
}

impl Rows {
    /// The schema of every batch in this result.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// What the host did to this result on the domain's behalf, such as suppressed groups.
    pub fn notices(&self) -> Vec<String> {
        self.inner.notices()
    }

    /// The next batch as rows of [`Cell`]s, converted by the host (the row
    /// interface Python jobs use); `None` at the end. Reads the same stream
    /// as iterating, so use one or the other.
    pub fn next_cells(&mut self) -> Option<Result<Vec<Vec<Cell>>, Error>> {
        self.inner.next_rows().map_err(Error::from).transpose()
    }
}

/// One value of a row in the row interface: null, boolean, integer, float,
/// text or date (days since 1970-01-01).
pub use bindings::inland::job::host::Cell;

impl Iterator for Rows {
    type Item = Result<RecordBatch, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.inner.next_batch() {
            Ok(Some(bytes)) => Some(ipc::decode_one(&bytes)),
            Ok(None) => None,
            Err(e) => Some(Err(e.into())),
        }
    }
}

/// Starts a read-only SQL query and returns its result as a stream of batches.
pub fn query_stream(sql: &str) -> Result<Rows, Error> {
    let inner = host::query(sql)?;
    let schema = ipc::decode_schema(&inner.schema())?;
    Ok(Rows { inner, schema })
}

/// Runs a read-only SQL query and collects every batch of its result.
pub fn query(sql: &str) -> Result<Vec<RecordBatch>, Error> {
    query_stream(sql)?.collect()
}

/// A value for a `$name` placeholder: the host binds it after parsing, so
/// it is compared as a value and never read as SQL. Prefer this to
/// formatting values into the SQL text.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean.
    Boolean(bool),
    /// A 64-bit integer.
    Integer(i64),
    /// A 64-bit float.
    Float(f64),
    /// A string.
    Text(String),
}

impl Value {
    /// A value as a job parameter writes it: `int:5`, `float:1.5`,
    /// `bool:true`, `text:…`, `null`, and anything else as text. How SQL
    /// jobs and probes turn `--param` values into bound values.
    pub fn from_param(raw: &str) -> Result<Value, Error> {
        let bad = |e: &dyn std::fmt::Display| Error::from(format!("value `{raw}`: {e}"));
        Ok(match raw.split_once(':') {
            Some(("int", v)) => Value::Integer(v.trim().parse().map_err(|e| bad(&e))?),
            Some(("float", v)) => Value::Float(v.trim().parse().map_err(|e| bad(&e))?),
            Some(("bool", v)) => Value::Boolean(v.trim().parse().map_err(|e| bad(&e))?),
            Some(("text", v)) => Value::Text(v.to_string()),
            _ if raw == "null" => Value::Null,
            _ => Value::Text(raw.to_string()),
        })
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Integer(i)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

impl From<&Value> for host::Value {
    fn from(v: &Value) -> Self {
        match v {
            Value::Null => host::Value::Null,
            Value::Boolean(b) => host::Value::Boolean(*b),
            Value::Integer(i) => host::Value::Integer(*i),
            Value::Float(f) => host::Value::Float(*f),
            Value::Text(s) => host::Value::Text(s.clone()),
        }
    }
}

/// Starts a query whose `$name` placeholders are bound to `params` (names
/// without the `$`), e.g. `query_stream_with("… WHERE district = $d", &[("d", "东城区".into())])`.
pub fn query_stream_with(sql: &str, params: &[(&str, Value)]) -> Result<Rows, Error> {
    let statement = host::Statement::new(sql);
    for (name, value) in params {
        statement.bind(name, &host::Value::from(value))?;
    }
    let inner = statement.run()?;
    let schema = ipc::decode_schema(&inner.schema())?;
    Ok(Rows { inner, schema })
}

/// [`query_stream_with`], collecting every batch of the result.
pub fn query_with(sql: &str, params: &[(&str, Value)]) -> Result<Vec<RecordBatch>, Error> {
    query_stream_with(sql, params)?.collect()
}

/// Hands a named output table to the host, which keeps it in quarantine.
///
/// Emitting the same name again appends the batch to that output. Names are
/// letters, digits, `_` and `-`, at most 64 characters.
pub fn emit(name: &str, batch: &RecordBatch) -> Result<(), Error> {
    let bytes = ipc::encode(batch)?;
    host::emit(name, &bytes)?;
    Ok(())
}
