//! What happens to an answer between the engine and the job: groups below
//! the minimum size are removed (the plan's own filter removed most), the
//! hidden columns are dropped, and the facts behind every aggregate value the
//! job will see are recorded for the gate.

use crate::cell::{CellPlan, CellRole};
use crate::contrib;
use crate::guard::{QueryError, RunError};
use crate::hidden::SKETCH;
use arrow::array::{Array, AsArray, BooleanArray};
use arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::memory::MemoryStream;
use futures::StreamExt;
use inland_gate::{CellFact, Contributions, EntitySketch, RowAt, canon};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Removes groups with fewer than `k` distinct entities (the last column)
/// that the plan's filter let through (none should), counts those it removed,
/// drops the hidden columns, says how many groups went, and records the
/// facts behind every aggregate value the job will see.
pub async fn suppress(
    mut stream: SendableRecordBatchStream,
    k: u64,
    cells: Option<&CellPlan>,
    removed_in_plan: Option<Arc<AtomicU64>>,
) -> Result<(SendableRecordBatchStream, Option<String>, Vec<(String, CellFact)>), RunError> {
    let full = stream.schema();
    let last = full.fields().len().saturating_sub(1);
    let contribs = cells.map(|c| c.contribs).unwrap_or(0);
    // The rewrite puts the entity sketch just before the group size.
    let sketch = (last >= 1 && full.field(last - 1).name() == SKETCH).then(|| last - 1);
    let visible = last.saturating_sub(contribs + usize::from(sketch.is_some()));
    let keep_cols: Vec<usize> = (0..visible).collect();
    let schema = Arc::new(full.project(&keep_cols).map_err(RunError::internal)?);
    let (mut kept, mut suppressed, mut facts) = (Vec::new(), 0usize, Vec::new());
    let mut rows_before = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(RunError::from)?;
        let n = batch.column(last).as_primitive::<arrow::datatypes::Int64Type>();
        let mask: BooleanArray = n.iter().map(|v| Some(v.is_some_and(|v| v >= k as i64))).collect();
        suppressed += mask.iter().filter(|m| *m == Some(false)).count();
        let filtered = arrow::compute::filter_record_batch(&batch, &mask).map_err(RunError::internal)?;
        if let Some(plan) = cells {
            record_facts(&filtered, plan, visible, sketch, rows_before, &mut facts)?;
        }
        rows_before += filtered.num_rows();
        kept.push(filtered.project(&keep_cols).map_err(RunError::internal)?);
    }
    // The plan's own filter removed most groups, before any HAVING, ORDER BY
    // or LIMIT; what reaches this point below `k` is removed here all the same.
    if let Some(r) = removed_in_plan {
        suppressed += r.load(Ordering::SeqCst) as usize;
    }
    if kept.is_empty() {
        // Every group removed in the plan: the job still gets the result's columns.
        kept.push(RecordBatch::new_empty(schema.clone()));
    }
    let notice = (suppressed > 0)
        .then(|| format!("{suppressed} group(s) with fewer than {k} distinct entities were suppressed"));
    let memory = MemoryStream::try_new(kept, schema, None).map_err(RunError::internal)?;
    Ok((Box::pin(memory), notice, facts))
}

/// The facts behind each aggregate value of one (already suppressed) batch:
/// its group keys, its distinct entities, and for sums and means the
/// contributions the hidden aggregate computed.
fn record_facts(
    batch: &RecordBatch,
    plan: &CellPlan,
    visible: usize,
    sketch: Option<usize>,
    rows_before: usize,
    out: &mut Vec<(String, CellFact)>,
) -> Result<(), QueryError> {
    let internal = |e: arrow::error::ArrowError| QueryError::Internal(format!("recording cell facts: {e}"));
    let last = batch.num_columns().saturating_sub(1);
    let entities = batch.column(last).as_primitive::<arrow::datatypes::Int64Type>();
    let text: Vec<Vec<Option<String>>> = (0..visible.min(plan.columns.len()))
        .map(|c| canon::column(batch.column(c)))
        .collect::<Result<_, _>>()
        .map_err(internal)?;
    let keys: Vec<usize> = (0..text.len()).filter(|&c| plan.columns[c] == CellRole::Key).collect();
    let sketches = sketch.and_then(|c| batch.column(c).as_binary_opt::<i32>());
    for r in 0..batch.num_rows() {
        let row_keys: Vec<String> = keys.iter().filter_map(|&c| text[c][r].clone()).collect();
        // One sketch per row, shared by its measures.
        let row_sketch = sketches
            .filter(|s| s.is_valid(r))
            .and_then(|s| EntitySketch::from_bytes(s.value(r)))
            .map(Arc::new);
        for (c, role) in plan.columns.iter().enumerate().take(text.len()) {
            let (source, kind, contributions) = match role {
                CellRole::Measure { source, kind, contrib } => (
                    source,
                    kind,
                    contrib.and_then(|j| contributions_at(batch, visible + j, r)),
                ),
                // A derived cell answers to its most dominated source.
                CellRole::Derived { source, kind, contribs } => (
                    source,
                    kind,
                    contribs
                        .iter()
                        .filter_map(|j| contributions_at(batch, visible + j, r))
                        .max_by(|a, b| dominance(a).total_cmp(&dominance(b))),
                ),
                CellRole::Key | CellRole::Other => continue,
            };
            let Some(value) = text[c][r].clone() else { continue };
            out.push((
                value,
                CellFact {
                    source: source.clone(),
                    kind: *kind,
                    keys: row_keys.clone(),
                    entities: entities.value(r).max(0) as u64,
                    contributions,
                    sketch: row_sketch.clone(),
                    // The query's number is set when the job's facts take it in.
                    at: Some(RowAt {
                        query: 0,
                        row: u32::try_from(rows_before + r).unwrap_or(u32::MAX),
                    }),
                },
            ));
        }
    }
    Ok(())
}

/// The contributions a hidden column holds for row `r`, if any.
fn contributions_at(batch: &RecordBatch, column: usize, r: usize) -> Option<Contributions> {
    let list = batch.column(column).as_list_opt::<i32>()?;
    if list.is_null(r) {
        return None;
    }
    let figures = list.value(r);
    let f = figures.as_primitive_opt::<arrow::datatypes::Float64Type>()?;
    // The shared figures; row contributions also carry a row count after them.
    (f.len() > contrib::MISSING).then(|| Contributions {
        largest: f.value(contrib::LARGEST),
        second: f.value(contrib::SECOND),
        total: f.value(contrib::TOTAL),
        negatives: f.value(contrib::NEGATIVES) as u64,
        missing: f.value(contrib::MISSING) as u64,
    })
}

/// How much of a total its two largest contributors hold.
fn dominance(c: &Contributions) -> f64 {
    if c.total > 0.0 {
        (c.largest + c.second) / c.total
    } else {
        f64::INFINITY
    }
}
