//! The host side of the `inland:job` world: what a job's imports do. Every
//! answer is decided here or by the [`QueryBackend`] the domain hands in;
//! nothing the guest reports is trusted.

use crate::collector::OutputCollector;
use crate::error::JobError;
use crate::log::JobLog;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::random::WasiRandomCtx;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../guest-sdk/wit",
        world: "job",
        imports: { default: async | trappable },
        exports: { default: async },
        additional_derives: [PartialEq],
        with: {
            "inland:job/host.rows": crate::host::RowsStream,
            "inland:job/host.statement": crate::host::Statement,
        },
    });
}

use bindings::inland::job::host as wit;

mod cells;

/// Queries a job may have open at once; each holds a running stream.
const MAX_OPEN_QUERIES: usize = 16;
/// Queries a job may run in total.
const MAX_QUERIES: usize = 10_000;
/// Longest SQL text accepted.
const MAX_SQL_BYTES: usize = 1 << 20;
/// Most values bound to one query.
const MAX_PARAMS: usize = 256;
/// Statements a job may have open at once; each holds its SQL and values.
const MAX_OPEN_STATEMENTS: usize = 16;
/// Core instances one job may create: a Rust job needs a handful, a
/// language runtime linked from shared libraries (CPython under
/// componentize-py: 33) many more.
pub(crate) const MAX_INSTANCES: usize = 64;
/// Tables one job may create (one per core instance that exports one, at most).
pub(crate) const MAX_TABLES: usize = 64;

/// A statement being prepared by the job: its SQL and the values bound so
/// far, each checked as it arrives (so no call lifts more than one value).
pub struct Statement {
    sql: String,
    params: Vec<(String, Bound)>,
    /// Bytes of SQL, names and text values held.
    bytes: usize,
    /// Why it cannot run, once known (e.g. its SQL was too long): kept
    /// instead of the text, which is dropped.
    broken: Option<QueryFailure>,
}

/// Whether `name` may name a placeholder: a letter or `_`, then up to 63
/// letters, digits or `_`. Names are shown to reviewers under the query, so
/// nothing else (no line breaks, no `--`) gets in.
pub fn placeholder_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A value a job binds to a `$name` placeholder: data, never SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
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

impl From<wit::Value> for Bound {
    fn from(v: wit::Value) -> Self {
        match v {
            wit::Value::Null => Bound::Null,
            wit::Value::Boolean(b) => Bound::Boolean(b),
            wit::Value::Integer(i) => Bound::Integer(i),
            wit::Value::Float(f) => Bound::Float(f),
            wit::Value::Text(s) => Bound::Text(s),
        }
    }
}

/// Why a query was not answered, as the job is told. The backend writes the
/// messages; they must never quote data the job may not see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryFailure {
    /// A rule refused the query; the message names the rule.
    Refused(String),
    /// The SQL is malformed or names what the job cannot see.
    Invalid(String),
    /// A resource limit of the query was reached.
    Limit(String),
    /// The host failed.
    Internal(String),
}

/// Batches of a started query, pulled as the job asks for them.
pub type BatchStream = BoxStream<'static, Result<RecordBatch, QueryFailure>>;

/// A started query: what the job reads through its `rows` resource.
pub struct Answer {
    /// The result's columns.
    pub schema: SchemaRef,
    /// The result's batches.
    pub batches: BatchStream,
    /// Lines for the job, such as how many groups were suppressed.
    pub notices: Vec<String>,
    /// The backend's number for this query, passed back in [`QueryBackend::rows_read`].
    pub index: usize,
}

/// A dataset as the job's listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetListing {
    /// The table name the job's SQL uses.
    pub name: String,
    /// What it holds.
    pub description: String,
    /// Its visible columns: (name, Arrow type, nullable).
    pub columns: Vec<(String, String, bool)>,
}

/// The query side, as the sandbox reaches it: the domain plans, checks and
/// records every query; the sandbox only carries answers to the guest.
#[async_trait]
pub trait QueryBackend: Send + Sync {
    /// The datasets the job may query, as it may see them.
    fn datasets(&self) -> Vec<DatasetListing>;
    /// Plans, checks and starts one query, its `$name` placeholders bound to
    /// `params`. A failure goes back to the job; an `Err` of the outer
    /// result is the host's own failure and stops it.
    async fn start(&self, sql: &str, params: &[(String, Bound)]) -> Result<Result<Answer, QueryFailure>, String>;
    /// The job has read `rows` more rows of query `index`.
    fn rows_read(&self, index: usize, rows: u64);
}

/// A running query, held in the job's resource table.
pub struct RowsStream {
    schema: SchemaRef,
    stream: Option<BatchStream>,
    /// The rows of a batch `next-rows` held back (over its budget).
    pending: Option<RecordBatch>,
    notices: Vec<String>,
    index: usize,
}

/// Tracks memory growth against the job's limit.
pub(crate) struct JobLimiter {
    memory_limit: u64,
    /// Bytes of linear memory the job holds, over all its memories: the
    /// limit is the job's, not each memory's (a component may have four).
    memory_used: u64,
    table_elements: usize,
}

impl JobLimiter {
    pub(crate) fn new(memory_limit: u64) -> Self {
        JobLimiter {
            memory_limit,
            memory_used: 0,
            table_elements: 100_000,
        }
    }
}

impl wasmtime::ResourceLimiter for JobLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let after = self
            .memory_used
            .saturating_add((desired as u64).saturating_sub(current as u64));
        if after > self.memory_limit {
            return Err(wasmtime::Error::new(JobError::OutOfMemory {
                limit_bytes: self.memory_limit,
            }));
        }
        self.memory_used = after;
        Ok(true)
    }
    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }
    fn instances(&self) -> usize {
        MAX_INSTANCES
    }
    fn tables(&self) -> usize {
        MAX_TABLES
    }
    fn memories(&self) -> usize {
        4
    }
}

/// Everything a running job's host calls need.
pub(crate) struct HostCtx {
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
    pub(crate) backend: Arc<dyn QueryBackend>,
    pub(crate) outputs: OutputCollector,
    pub(crate) log: JobLog,
    started: usize,
    open_queries: usize,
    open_statements: usize,
    /// The grant the job runs under, named when a termination stops it.
    pub(crate) grant: String,
    /// Set when the grant is terminated: the job stops at its next epoch tick.
    pub(crate) cancel: Arc<AtomicBool>,
}

impl HostCtx {
    pub(crate) fn new(
        timeout: Duration,
        backend: Arc<dyn QueryBackend>,
        outputs: OutputCollector,
        log: JobLog,
        grant: String,
        cancel: Arc<AtomicBool>,
    ) -> Self {
        HostCtx {
            deadline: Instant::now() + timeout,
            timeout,
            backend,
            outputs,
            log,
            started: 0,
            open_queries: 0,
            open_statements: 0,
            grant,
            cancel,
        }
    }

    fn timeout_error(&self) -> wasmtime::Error {
        wasmtime::Error::new(JobError::Timeout { limit: self.timeout })
    }
}

/// The store data of one job.
pub(crate) struct JobState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) random: WasiRandomCtx,
    pub(crate) limiter: JobLimiter,
    pub(crate) host: HostCtx,
}

impl WasiView for JobState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn wit_error(e: QueryFailure) -> wit::Error {
    match e {
        QueryFailure::Refused(m) => wit::Error::Refused(m),
        QueryFailure::Invalid(m) => wit::Error::Invalid(m),
        QueryFailure::Limit(m) => wit::Error::Limit(m),
        QueryFailure::Internal(m) => wit::Error::Internal(m),
    }
}

/// A view array cut from a larger batch (after a sort, a limit or a join)
/// still points at every string buffer of that batch, and IPC would copy
/// them all into the guest: keep only the bytes its rows use.
fn compact_views(batch: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    use arrow::array::{ArrayRef, AsArray};
    use arrow::datatypes::DataType;
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8View => Arc::new(c.as_string_view().gc()) as ArrayRef,
            DataType::BinaryView => Arc::new(c.as_binary_view().gc()) as ArrayRef,
            _ => c.clone(),
        })
        .collect();
    RecordBatch::try_new(batch.schema(), columns)
}

fn encode_ipc(schema: &SchemaRef, batch: Option<&RecordBatch>) -> Result<Vec<u8>, arrow::error::ArrowError> {
    let mut out = Vec::new();
    {
        let mut writer = StreamWriter::try_new(&mut out, schema)?;
        if let Some(b) = batch {
            writer.write(&compact_views(b)?)?;
        }
        writer.finish()?;
    }
    Ok(out)
}

fn internal(e: impl std::fmt::Display) -> wasmtime::Error {
    wasmtime::Error::msg(format!("host error: {e}"))
}

impl JobState {
    async fn run_query(
        &mut self,
        sql: &str,
        params: &[(String, Bound)],
    ) -> wasmtime::Result<Result<RowsStream, QueryFailure>> {
        let bound_bytes: usize = params
            .iter()
            .map(|(k, v)| k.len() + if let Bound::Text(s) = v { s.len() } else { 8 })
            .sum();
        if sql.len() + bound_bytes > MAX_SQL_BYTES {
            return Ok(Err(QueryFailure::Limit(format!(
                "the SQL text and its bound values are longer than {MAX_SQL_BYTES} bytes"
            ))));
        }
        if params.len() > MAX_PARAMS {
            return Ok(Err(QueryFailure::Limit(format!(
                "a query takes at most {MAX_PARAMS} bound values"
            ))));
        }
        if self.host.started >= MAX_QUERIES {
            return Ok(Err(QueryFailure::Limit(format!(
                "a job may run at most {MAX_QUERIES} queries"
            ))));
        }
        if self.host.open_queries >= MAX_OPEN_QUERIES {
            return Ok(Err(QueryFailure::Limit(format!(
                "a job may have at most {MAX_OPEN_QUERIES} queries open; drop finished results first"
            ))));
        }
        self.host.started += 1;
        let started =
            match tokio::time::timeout_at(self.host.deadline.into(), self.host.backend.start(sql, params)).await {
                Ok(r) => r.map_err(internal)?,
                Err(_) => return Err(self.host.timeout_error()),
            };
        Ok(started.map(|answer| {
            self.host.open_queries += 1;
            RowsStream {
                schema: answer.schema,
                stream: Some(answer.batches),
                pending: None,
                notices: answer.notices,
                index: answer.index,
            }
        }))
    }
}

impl JobState {
    /// The next batch of a result, for `next-batch` and `next-rows` alike:
    /// the deadline applies and the rows are counted as read (a part held
    /// back by `next-rows` was counted with its batch).
    async fn next_record_batch(
        &mut self,
        rows: &Resource<RowsStream>,
    ) -> wasmtime::Result<Result<Option<RecordBatch>, wit::Error>> {
        let deadline = self.host.deadline;
        let r = self.table.get_mut(rows)?;
        // The part of a batch next-rows held back comes first.
        if let Some(rest) = r.pending.take() {
            return Ok(Ok(Some(rest)));
        }
        let Some(stream) = r.stream.as_mut() else {
            return Ok(Ok(None));
        };
        let next = match tokio::time::timeout_at(deadline.into(), stream.next()).await {
            Ok(n) => n,
            Err(_) => return Err(self.host.timeout_error()),
        };
        match next {
            None => {
                r.stream = None;
                Ok(Ok(None))
            }
            Some(Err(e)) => {
                r.stream = None;
                Ok(Err(wit_error(e)))
            }
            Some(Ok(batch)) => {
                let index = r.index;
                self.host.backend.rows_read(index, batch.num_rows() as u64);
                Ok(Ok(Some(batch)))
            }
        }
    }
}

impl wit::Host for JobState {
    async fn list_datasets(&mut self) -> wasmtime::Result<Vec<wit::Dataset>> {
        Ok(self
            .host
            .backend
            .datasets()
            .into_iter()
            .map(|d| wit::Dataset {
                name: d.name,
                description: d.description,
                columns: d
                    .columns
                    .into_iter()
                    .map(|(name, data_type, nullable)| wit::Column {
                        name,
                        data_type,
                        nullable,
                    })
                    .collect(),
            })
            .collect())
    }

    async fn query(&mut self, sql: String) -> wasmtime::Result<Result<Resource<RowsStream>, wit::Error>> {
        match self.run_query(&sql, &[]).await? {
            Ok(rows) => Ok(Ok(self.table.push(rows)?)),
            Err(e) => Ok(Err(wit_error(e))),
        }
    }

    async fn emit(&mut self, name: String, table: Vec<u8>) -> wasmtime::Result<Result<(), wit::Error>> {
        match self.host.outputs.add(&name, &table) {
            Ok(Ok(())) => Ok(Ok(())),
            Ok(Err(message)) => Ok(Err(wit::Error::Invalid(message))),
            Err(limit) => Err(wasmtime::Error::new(limit)),
        }
    }

    async fn emit_rows(&mut self, name: String, table: Vec<u8>) -> wasmtime::Result<Result<(), wit::Error>> {
        // Charged like an Arrow table before anything is parsed: what the
        // job sent counts against its output cap.
        if let Err(limit) = self.host.outputs.charge(table.len()) {
            return Err(wasmtime::Error::new(limit));
        }
        let batch = match cells::from_json(&table) {
            Ok(b) => b,
            Err(m) => return Ok(Err(wit::Error::Invalid(format!("output `{name}`: {m}")))),
        };
        drop(table);
        let ipc = encode_ipc(&batch.schema(), Some(&batch)).map_err(internal)?;
        match self.host.outputs.add_uncharged(&name, &ipc) {
            Ok(()) => Ok(Ok(())),
            Err(message) => Ok(Err(wit::Error::Invalid(message))),
        }
    }

    async fn log(&mut self, level: wit::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            wit::Level::Debug => "debug",
            wit::Level::Info => "info",
            wit::Level::Warn => "warn",
            wit::Level::Error => "error",
        };
        self.host.log.push(level, message);
        Ok(())
    }
}

impl wit::HostStatement for JobState {
    async fn new(&mut self, sql: String) -> wasmtime::Result<Resource<Statement>> {
        if self.host.open_statements >= MAX_OPEN_STATEMENTS {
            return Err(wasmtime::Error::msg(format!(
                "a job may have at most {MAX_OPEN_STATEMENTS} statements open; drop finished ones first"
            )));
        }
        let broken = (sql.len() > MAX_SQL_BYTES)
            .then(|| QueryFailure::Limit(format!("the SQL text is longer than {MAX_SQL_BYTES} bytes")));
        let statement = Statement {
            bytes: sql.len(),
            sql: if broken.is_some() { String::new() } else { sql },
            params: Vec::new(),
            broken,
        };
        self.host.open_statements += 1;
        Ok(self.table.push(statement)?)
    }

    async fn bind(
        &mut self,
        statement: Resource<Statement>,
        name: String,
        value: wit::Value,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let s = self.table.get_mut(&statement)?;
        if !placeholder_name(&name) {
            return Ok(Err(wit::Error::Invalid(
                "a placeholder name is a letter or `_`, then at most 63 letters, digits or `_`".into(),
            )));
        }
        if s.params.iter().any(|(n, _)| *n == name) {
            return Ok(Err(wit::Error::Invalid(format!("`${name}` is bound already"))));
        }
        if s.params.len() >= MAX_PARAMS {
            return Ok(Err(wit::Error::Limit(format!(
                "a query takes at most {MAX_PARAMS} bound values"
            ))));
        }
        let value = Bound::from(value);
        let size = name.len() + if let Bound::Text(t) = &value { t.len() } else { 8 };
        if s.bytes + size > MAX_SQL_BYTES {
            return Ok(Err(wit::Error::Limit(format!(
                "the SQL text and its bound values are longer than {MAX_SQL_BYTES} bytes"
            ))));
        }
        s.bytes += size;
        s.params.push((name, value));
        Ok(Ok(()))
    }

    async fn run(
        &mut self,
        statement: Resource<Statement>,
    ) -> wasmtime::Result<Result<Resource<RowsStream>, wit::Error>> {
        let s = self.table.get(&statement)?;
        if let Some(broken) = &s.broken {
            return Ok(Err(wit_error(broken.clone())));
        }
        let (sql, params) = (s.sql.clone(), s.params.clone());
        match self.run_query(&sql, &params).await? {
            Ok(rows) => Ok(Ok(self.table.push(rows)?)),
            Err(e) => Ok(Err(wit_error(e))),
        }
    }

    async fn drop(&mut self, statement: Resource<Statement>) -> wasmtime::Result<()> {
        self.table.delete(statement)?;
        self.host.open_statements = self.host.open_statements.saturating_sub(1);
        Ok(())
    }
}

impl wit::HostRows for JobState {
    async fn schema(&mut self, rows: Resource<RowsStream>) -> wasmtime::Result<Vec<u8>> {
        let r = self.table.get(&rows)?;
        encode_ipc(&r.schema, None).map_err(internal)
    }

    async fn next_batch(
        &mut self,
        rows: Resource<RowsStream>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wit::Error>> {
        let schema = self.table.get(&rows)?.schema.clone();
        Ok(match self.next_record_batch(&rows).await? {
            Ok(Some(batch)) => Ok(Some(encode_ipc(&schema, Some(&batch)).map_err(internal)?)),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        })
    }

    async fn columns(&mut self, rows: Resource<RowsStream>) -> wasmtime::Result<Vec<wit::Column>> {
        Ok(cells::columns(&self.table.get(&rows)?.schema))
    }

    async fn next_rows(
        &mut self,
        rows: Resource<RowsStream>,
    ) -> wasmtime::Result<Result<Option<Vec<Vec<wit::Cell>>>, wit::Error>> {
        // A column rows cannot carry is refused before a batch is read.
        if let Err(m) = cells::readable(&self.table.get(&rows)?.schema) {
            return Ok(Err(wit::Error::Invalid(m)));
        }
        let batch = match self.next_record_batch(&rows).await? {
            Ok(Some(batch)) => batch,
            other => return Ok(other.map(|_| None)),
        };
        // At most one budget's worth a call; the rest waits for the next.
        let fit = cells::rows_within_budget(&batch);
        let r = self.table.get_mut(&rows)?;
        if fit == 0 {
            r.stream = None;
            return Ok(Err(wit::Error::Limit(format!(
                "a row of this result holds more than {} bytes: read it with next-batch, or select less",
                cells::READ_BUDGET
            ))));
        }
        if fit < batch.num_rows() {
            r.pending = Some(batch.slice(fit, batch.num_rows() - fit));
        }
        match cells::to_rows(&batch.slice(0, fit)) {
            Ok(cells) => Ok(Ok(Some(cells))),
            Err(m) => {
                // The stream ends rather than skip rows the job never saw.
                r.stream = None;
                r.pending = None;
                Ok(Err(wit::Error::Invalid(m)))
            }
        }
    }

    async fn notices(&mut self, rows: Resource<RowsStream>) -> wasmtime::Result<Vec<String>> {
        Ok(self.table.get(&rows)?.notices.clone())
    }

    async fn drop(&mut self, rows: Resource<RowsStream>) -> wasmtime::Result<()> {
        self.table.delete(rows)?;
        self.host.open_queries = self.host.open_queries.saturating_sub(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, StringViewArray};
    use arrow::datatypes::{DataType, Field, Schema};

    /// The memory limit is the job's: two memories of 60% each do not fit.
    #[test]
    fn the_memory_limit_counts_every_memory_of_the_job() {
        use wasmtime::ResourceLimiter;
        let mut limiter = JobLimiter::new(100 << 20);
        assert!(limiter.memory_growing(0, 60 << 20, None).unwrap());
        assert!(limiter.memory_growing(0, 30 << 20, None).unwrap());
        let err = limiter.memory_growing(0, 20 << 20, None).unwrap_err();
        assert!(matches!(
            err.downcast_ref::<JobError>(),
            Some(JobError::OutOfMemory { .. })
        ));
        // Growing one memory counts only what it adds.
        assert!(limiter.memory_growing(60 << 20, 70 << 20, None).unwrap());
    }

    #[test]
    fn a_few_rows_cut_from_a_large_batch_cross_as_a_few_rows() {
        let long = "a string long enough not to be inlined in its view ".repeat(4);
        let values: StringViewArray = (0..10_000).map(|i| Some(format!("{long}{i}"))).collect();
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8View, true)]));
        let full = RecordBatch::try_new(schema.clone(), vec![Arc::new(values)]).unwrap();
        let few = full.slice(9_990, 10);
        let all = encode_ipc(&schema, Some(&full)).unwrap();
        let sent = encode_ipc(&schema, Some(&few)).unwrap();
        assert!(
            sent.len() * 100 < all.len(),
            "{} bytes for 10 rows of {}",
            sent.len(),
            all.len()
        );
        // And the rows are the same rows.
        let mut reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(sent), None).unwrap();
        let got = reader.next().unwrap().unwrap();
        assert_eq!(got.column(0).len(), 10);
        assert_eq!(got.column(0).as_ref(), few.column(0).as_ref());
    }
}
