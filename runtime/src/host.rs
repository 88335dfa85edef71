//! The host side of the `inland:job` world: what a job's imports do. Every
//! answer is decided here; nothing the guest reports is trusted.

use crate::catalog::DatasetRecord;
use crate::error::JobError;
use crate::events::{Event, EventSink};
use crate::output::OutputCollector;
use crate::query::{QueryEngine, QueryError, QueryScope};
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
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
        with: { "inland:job/host.rows": crate::host::RowsStream },
    });
}

use bindings::inland::job::host as wit;

/// Queries a job may have open at once; each holds a running DataFusion stream.
const MAX_OPEN_QUERIES: usize = 16;
/// Queries a job may run in total.
const MAX_QUERIES: usize = 10_000;
/// Longest SQL text accepted.
const MAX_SQL_BYTES: usize = 1 << 20;

/// A running query, held in the job's resource table.
pub struct RowsStream {
    schema: SchemaRef,
    stream: Option<SendableRecordBatchStream>,
    notices: Vec<String>,
    /// Index of this query in the job's query records.
    index: usize,
}

/// A query as the job ran it, for the job record and the output's lineage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryRecord {
    /// The SQL text.
    pub sql: String,
    /// SHA-256 of the checked plan, when it got that far.
    pub plan_hash: Option<String>,
    /// Rows returned to the job.
    pub rows: u64,
    /// The refusal or error, if any.
    pub error: Option<String>,
    /// The result's label, decided by the host from the plan.
    #[serde(default)]
    pub label: Option<inland_policies::Label>,
}

/// A line of the job's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// `debug`, `info`, `warn`, `error`, or `stdout`/`stderr` for captured output.
    pub level: String,
    /// The text.
    pub message: String,
}

/// A bounded job log: lines past the cap are counted, not kept.
#[derive(Debug, Default)]
pub(crate) struct JobLog {
    pub(crate) lines: Vec<LogLine>,
    bytes: usize,
    cap: usize,
    pub(crate) dropped: u64,
}

impl JobLog {
    pub(crate) fn new(cap: usize) -> Self {
        JobLog {
            cap,
            ..Default::default()
        }
    }
    pub(crate) fn push(&mut self, level: &str, message: String) {
        if self.bytes + message.len() > self.cap {
            self.dropped += 1;
            return;
        }
        self.bytes += message.len();
        self.lines.push(LogLine {
            level: level.to_string(),
            message,
        });
    }
}

/// Tracks memory growth against the job's limit, and remembers a breach.
pub(crate) struct JobLimiter {
    memory_limit: u64,
    table_elements: usize,
}

impl JobLimiter {
    pub(crate) fn new(memory_limit: u64) -> Self {
        JobLimiter {
            memory_limit,
            table_elements: 100_000,
        }
    }
}

impl wasmtime::ResourceLimiter for JobLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_limit {
            return Err(wasmtime::Error::new(JobError::OutOfMemory {
                limit_bytes: self.memory_limit,
            }));
        }
        Ok(true)
    }
    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }
    fn instances(&self) -> usize {
        32
    }
    fn tables(&self) -> usize {
        32
    }
    fn memories(&self) -> usize {
        4
    }
}

/// Everything a running job's host calls need.
pub(crate) struct HostCtx {
    pub(crate) job_id: String,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
    pub(crate) session: SessionContext,
    pub(crate) scope: QueryScope,
    pub(crate) datasets: Vec<DatasetRecord>,
    pub(crate) engine: Arc<QueryEngine>,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) outputs: OutputCollector,
    pub(crate) log: JobLog,
    pub(crate) queries: Vec<QueryRecord>,
    open_queries: usize,
    /// The grant the job runs under.
    pub(crate) grant: String,
    /// The job's label so far (the highest it has read) and why.
    pub(crate) label: Option<(inland_policies::Label, String)>,
    /// Facts behind every aggregate value the job was given, for the gate.
    pub(crate) facts: inland_gate::FactIndex,
    /// Set when the grant is terminated: the job stops at its next epoch tick.
    pub(crate) cancel: Arc<std::sync::atomic::AtomicBool>,
}

impl HostCtx {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        job_id: String,
        timeout: Duration,
        session: SessionContext,
        datasets: Vec<DatasetRecord>,
        engine: Arc<QueryEngine>,
        events: Arc<dyn EventSink>,
        outputs: OutputCollector,
        log: JobLog,
        grant: String,
        cancel: Arc<std::sync::atomic::AtomicBool>,
    ) -> Self {
        let scope = QueryScope {
            datasets: datasets.iter().map(|d| d.name.clone()).collect(),
            ..Default::default()
        };
        HostCtx {
            job_id,
            deadline: Instant::now() + timeout,
            timeout,
            session,
            scope,
            datasets,
            engine,
            events,
            outputs,
            log,
            queries: Vec::new(),
            open_queries: 0,
            grant,
            cancel,
            label: None,
            facts: inland_gate::FactIndex::default(),
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

fn wit_error(e: QueryError) -> wit::Error {
    match e {
        QueryError::Refused { .. } => wit::Error::Refused(e.to_string()),
        QueryError::Invalid(m) => wit::Error::Invalid(m),
        QueryError::Limit(m) => wit::Error::Limit(m),
        QueryError::Internal(m) => wit::Error::Internal(m),
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
    async fn run_query(&mut self, sql: &str) -> wasmtime::Result<Result<RowsStream, QueryError>> {
        if sql.len() > MAX_SQL_BYTES {
            return Ok(Err(QueryError::Limit(format!(
                "the SQL text is longer than {MAX_SQL_BYTES} bytes"
            ))));
        }
        if self.host.queries.len() >= MAX_QUERIES {
            return Ok(Err(QueryError::Limit(format!(
                "a job may run at most {MAX_QUERIES} queries"
            ))));
        }
        if self.host.open_queries >= MAX_OPEN_QUERIES {
            return Ok(Err(QueryError::Limit(format!(
                "a job may have at most {MAX_OPEN_QUERIES} queries open; drop finished results first"
            ))));
        }
        let mut new_facts = Vec::new();
        let h = &self.host;
        // Planned and started on the query runtime, not on the job's fiber:
        // DataFusion's planner recurses deeply under a stack guard made for
        // thread stacks, and on the fiber it ran 3x slower (TPC-H Q10: 50 ms
        // to plan in the sandbox, 16 ms here).
        let (engine, session, scope, text) = (h.engine.clone(), h.session.clone(), h.scope.clone(), sql.to_string());
        let work = async move {
            datafusion::common::runtime::SpawnedTask::spawn(async move {
                let planned = engine.plan(&session, &scope, &text).await?;
                let stream = engine.execute(&session, &planned).await?;
                Ok::<_, QueryError>((planned, stream))
            })
            .join()
            .await
            .map_err(|e| QueryError::Internal(format!("the query task failed: {e}")))?
        };
        let outcome = match tokio::time::timeout_at(h.deadline.into(), work).await {
            Ok(r) => r,
            Err(_) => return Err(self.host.timeout_error()),
        };
        let outcome = match outcome {
            Ok((planned, stream)) => match planned.suppress_below {
                Some(k) => {
                    match tokio::time::timeout_at(
                        h.deadline.into(),
                        suppress(stream, k, planned.cells.as_ref(), planned.suppressed.clone()),
                    )
                    .await
                    {
                        Ok(Ok((stream, notice, facts))) => {
                            let mut planned = planned;
                            planned.notices.extend(notice);
                            new_facts = facts;
                            Ok((planned, stream))
                        }
                        Ok(Err(e)) => Err(e),
                        Err(_) => return Err(self.host.timeout_error()),
                    }
                }
                None => Ok((planned, stream)),
            },
            Err(e) => Err(e),
        };
        match outcome {
            Ok((planned, stream)) => {
                h.events
                    .record(Event::QueryRun {
                        job_id: h.job_id.clone(),
                        sql: sql.to_string(),
                        plan_hash: planned.plan_hash.clone(),
                        label: planned.label.as_ref().map(|(l, _)| *l),
                    })
                    .map_err(internal)?;
                if let Some((l, why)) = &planned.label
                    && self.host.label.as_ref().is_none_or(|(have, _)| l > have)
                {
                    // A job's label is the highest it has read; it never goes down.
                    self.host.label = Some((*l, why.clone()));
                }
                for (value, fact) in new_facts {
                    if !self.host.facts.add(value, fact) {
                        break;
                    }
                }
                self.host.queries.push(QueryRecord {
                    sql: sql.to_string(),
                    plan_hash: Some(planned.plan_hash),
                    rows: 0,
                    error: None,
                    label: planned.label.as_ref().map(|(l, _)| *l),
                });
                self.host.open_queries += 1;
                Ok(Ok(RowsStream {
                    schema: stream.schema(),
                    stream: Some(stream),
                    notices: planned.notices,
                    index: self.host.queries.len() - 1,
                }))
            }
            Err(e) => {
                if let QueryError::Refused { rule, message } = &e {
                    h.events
                        .record(Event::QueryRefused {
                            job_id: h.job_id.clone(),
                            sql: sql.to_string(),
                            rule: rule.clone(),
                            message: message.clone(),
                        })
                        .map_err(internal)?;
                }
                self.host.queries.push(QueryRecord {
                    sql: sql.to_string(),
                    plan_hash: None,
                    rows: 0,
                    error: Some(e.to_string()),
                    label: None,
                });
                Ok(Err(e))
            }
        }
    }
}

/// Removes groups with fewer than `k` distinct entities (the last column)
/// that the plan's filter let through (none should), counts those it removed,
/// drops the hidden columns, says how many groups went, and records the
/// facts behind every aggregate value the job will see.
async fn suppress(
    mut stream: SendableRecordBatchStream,
    k: u64,
    cells: Option<&crate::aggregate_rule::CellPlan>,
    removed_in_plan: Option<Arc<std::sync::atomic::AtomicU64>>,
) -> Result<
    (
        SendableRecordBatchStream,
        Option<String>,
        Vec<(String, inland_gate::CellFact)>,
    ),
    QueryError,
> {
    use arrow::array::{AsArray, BooleanArray};
    let full = stream.schema();
    let last = full.fields().len().saturating_sub(1);
    let contribs = cells.map(|c| c.contribs).unwrap_or(0);
    let visible = last.saturating_sub(contribs);
    let keep_cols: Vec<usize> = (0..visible).collect();
    let schema = Arc::new(
        full.project(&keep_cols)
            .map_err(|e| QueryError::Internal(e.to_string()))?,
    );
    let (mut kept, mut suppressed, mut facts) = (Vec::new(), 0usize, Vec::new());
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(QueryError::from)?;
        let n = batch.column(last).as_primitive::<arrow::datatypes::Int64Type>();
        let mask: BooleanArray = n.iter().map(|v| Some(v.is_some_and(|v| v >= k as i64))).collect();
        suppressed += mask.iter().filter(|m| *m == Some(false)).count();
        let filtered =
            arrow::compute::filter_record_batch(&batch, &mask).map_err(|e| QueryError::Internal(e.to_string()))?;
        if let Some(plan) = cells {
            record_facts(&filtered, plan, visible, &mut facts)?;
        }
        kept.push(
            filtered
                .project(&keep_cols)
                .map_err(|e| QueryError::Internal(e.to_string()))?,
        );
    }
    // The plan's own filter removed most groups, before any HAVING, ORDER BY
    // or LIMIT; what reaches this point below `k` is removed here all the same.
    if let Some(r) = removed_in_plan {
        suppressed += r.load(std::sync::atomic::Ordering::SeqCst) as usize;
    }
    if kept.is_empty() {
        // Every group removed in the plan: the job still gets the result's columns.
        kept.push(arrow::array::RecordBatch::new_empty(schema.clone()));
    }
    let notice = (suppressed > 0)
        .then(|| format!("{suppressed} group(s) with fewer than {k} distinct entities were suppressed"));
    let memory = datafusion::physical_plan::memory::MemoryStream::try_new(kept, schema, None)
        .map_err(|e| QueryError::Internal(e.to_string()))?;
    Ok((Box::pin(memory), notice, facts))
}

/// The facts behind each aggregate value of one (already suppressed) batch:
/// its group keys, its distinct entities, and for sums and means the
/// contributions the hidden aggregate computed.
fn record_facts(
    batch: &RecordBatch,
    plan: &crate::aggregate_rule::CellPlan,
    visible: usize,
    out: &mut Vec<(String, inland_gate::CellFact)>,
) -> Result<(), QueryError> {
    use crate::aggregate_rule::CellRole;
    use arrow::array::{Array, AsArray};
    let internal = |e: arrow::error::ArrowError| QueryError::Internal(format!("recording cell facts: {e}"));
    let last = batch.num_columns().saturating_sub(1);
    let entities = batch.column(last).as_primitive::<arrow::datatypes::Int64Type>();
    let text: Vec<Vec<Option<String>>> = (0..visible.min(plan.columns.len()))
        .map(|c| inland_gate::canon::column(batch.column(c)))
        .collect::<Result<_, _>>()
        .map_err(internal)?;
    let keys: Vec<usize> = (0..text.len()).filter(|&c| plan.columns[c] == CellRole::Key).collect();
    for r in 0..batch.num_rows() {
        let row_keys: Vec<String> = keys.iter().filter_map(|&c| text[c][r].clone()).collect();
        for (c, role) in plan.columns.iter().enumerate().take(text.len()) {
            let CellRole::Measure { source, kind, contrib } = role else {
                continue;
            };
            let Some(value) = text[c][r].clone() else { continue };
            let contributions = contrib.and_then(|j| {
                let list = batch.column(visible + j).as_list::<i32>();
                if list.is_null(r) {
                    return None;
                }
                let figures = list.value(r);
                let f = figures.as_primitive::<arrow::datatypes::Float64Type>();
                // The shared figures; row contributions also carry a row count after them.
                (f.len() > crate::contrib::MISSING).then(|| inland_gate::Contributions {
                    largest: f.value(crate::contrib::LARGEST),
                    second: f.value(crate::contrib::SECOND),
                    total: f.value(crate::contrib::TOTAL),
                    negatives: f.value(crate::contrib::NEGATIVES) as u64,
                    missing: f.value(crate::contrib::MISSING) as u64,
                })
            });
            out.push((
                value,
                inland_gate::CellFact {
                    source: source.clone(),
                    kind: *kind,
                    keys: row_keys.clone(),
                    entities: entities.value(r).max(0) as u64,
                    contributions,
                },
            ));
        }
    }
    Ok(())
}

impl wit::Host for JobState {
    async fn list_datasets(&mut self) -> wasmtime::Result<Vec<wit::Dataset>> {
        Ok(self
            .host
            .datasets
            .iter()
            .map(|d| wit::Dataset {
                name: d.name.clone(),
                description: d.description.clone(),
                columns: d
                    .columns
                    .iter()
                    .map(|c| wit::Column {
                        name: c.name.clone(),
                        data_type: c.data_type.clone(),
                        nullable: c.nullable,
                    })
                    .collect(),
            })
            .collect())
    }

    async fn query(&mut self, sql: String) -> wasmtime::Result<Result<Resource<RowsStream>, wit::Error>> {
        match self.run_query(&sql).await? {
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

impl wit::HostRows for JobState {
    async fn schema(&mut self, rows: Resource<RowsStream>) -> wasmtime::Result<Vec<u8>> {
        let r = self.table.get(&rows)?;
        encode_ipc(&r.schema, None).map_err(internal)
    }

    async fn next_batch(
        &mut self,
        rows: Resource<RowsStream>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wit::Error>> {
        let deadline = self.host.deadline;
        let r = self.table.get_mut(&rows)?;
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
                Ok(Err(wit_error(QueryError::from(e))))
            }
            Some(Ok(batch)) => {
                let bytes = encode_ipc(&r.schema, Some(&batch)).map_err(internal)?;
                let index = r.index;
                if let Some(q) = self.host.queries.get_mut(index) {
                    q.rows += batch.num_rows() as u64;
                }
                Ok(Ok(Some(bytes)))
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
