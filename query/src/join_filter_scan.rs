//! A join's own filter applied row by row inside the scan it probes, while
//! the build side's keys are a short list.
//!
//! A hash join hands the scan on its probe side a dynamic filter (the build
//! side's key range, and its keys as a list or as a lookup in the join's
//! hash table) once the build side is known. With Parquet filter pushdown
//! off, as in job sessions, the scan uses it only to skip row groups and
//! pages by their statistics, which in a table not stored by the join key
//! skips nothing: every row is decoded, then thrown away by the join.
//! Turning pushdown on for the whole session filters every predicate row by
//! row in the reader, which is slower for the plain range and string
//! predicates most scans carry (TPC-H q6, q12, q1 were 25-60% slower).
//!
//! This rule turns it on only for scans whose predicate is nothing but
//! dynamic filters over plain columns, and only while a filter's keys are a
//! short list (job sessions make one of at most 1,024 keys): then the
//! reader decodes the key column, keeps the rows the join can match, and
//! decodes the other columns for those alone (TPC-H q17 and q18 were 15-25%
//! faster). A filter that looks keys up in the join's hash table costs as
//! much as the join's own probe and saves little (with it, q9 was 50%
//! slower), so in the scan it lets every row through ([`ShortKeyList`]). Static predicates keep their filter node and their
//! statistics pruning, as before.
//!
//! Results are unchanged: the join still matches every row it is given, and
//! a dynamic filter only removes rows it could not match. A scan with a row
//! limit, or below any node that passes on rows by their count or position
//! (`LIMIT`, `OFFSET`, a fetch folded into a join, filter or sort) between
//! it and the filter's maker, is left alone: that node would count only the
//! rows the filter kept. The key expressions are plain columns, so the filter evaluates
//! nothing in the scan that could fail.

use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::common::Result as DfResult;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNode;
use datafusion::datasource::physical_plan::{FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::expressions::{Column, DynamicFilterPhysicalExpr, lit};
use datafusion::physical_expr::{PhysicalExpr, conjunction, split_conjunction};
use datafusion::physical_expr_common::physical_expr::snapshot_physical_expr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::joins::HashTableLookupExpr;
use datafusion::physical_plan::limit::{GlobalLimitExec, LocalLimitExec};
use datafusion::physical_plan::{ChildrenPropertiesMode, ExecutionPlan, ReplaceChildrenOptions};
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

/// Filters a scan row by row by the joins it feeds, when nothing else filters it there.
#[derive(Debug, Default)]
pub(crate) struct JoinFilterScanRule;

impl PhysicalOptimizerRule for JoinFilterScanRule {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> DfResult<Arc<dyn ExecutionPlan>> {
        rewrite(plan, &HashSet::new())
    }

    fn name(&self) -> &str {
        "inland_join_filter_scan"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `node` passes on only some of its rows by their count or
/// position (`LIMIT`, `OFFSET`, a fetch folded into a join, filter, sort or
/// merge). A dynamic filter made above it must not reach a scan below it
/// row by row: the node would then count only the rows the filter kept.
fn counts_rows(node: &Arc<dyn ExecutionPlan>) -> bool {
    node.fetch().is_some() || node.is::<GlobalLimitExec>() || node.is::<LocalLimitExec>()
}

/// `node` with its scans filtered by the dynamic filters in `usable`: the
/// ids of those made by the nodes above with no row-counting node between.
fn rewrite(node: Arc<dyn ExecutionPlan>, usable: &HashSet<u64>) -> DfResult<Arc<dyn ExecutionPlan>> {
    if let Some(scan) = join_filtered(&node, usable) {
        return Ok(scan);
    }
    if node.children().is_empty() {
        return Ok(node);
    }
    // A node's own filters stay usable below it even if it counts rows: they
    // only drop rows it would drop itself, so its output is the same.
    let mut below = if counts_rows(&node) {
        HashSet::new()
    } else {
        usable.clone()
    };
    below.extend(
        node.dynamic_expressions_produced()
            .iter()
            .filter_map(|e| e.expression_id()),
    );
    let children: Vec<Arc<dyn ExecutionPlan>> = node.children().into_iter().cloned().collect();
    let mut changed = false;
    let mut rewritten = Vec::with_capacity(children.len());
    for child in children {
        let new = rewrite(Arc::clone(&child), &below)?;
        changed |= !Arc::ptr_eq(&new, &child);
        rewritten.push(new);
    }
    if changed {
        node.replace_children(
            rewritten,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    } else {
        Ok(node)
    }
}

/// The scan `node` with row-level filtering on, if it is a Parquet scan
/// without a row limit whose predicate is made of dynamic filters over
/// plain columns alone, each made by a node in `usable`.
fn join_filtered(node: &Arc<dyn ExecutionPlan>, usable: &HashSet<u64>) -> Option<Arc<dyn ExecutionPlan>> {
    let exec = node.downcast_ref::<DataSourceExec>()?;
    let config = exec.data_source().downcast_ref::<FileScanConfig>()?;
    let source = config.file_source().downcast_ref::<ParquetSource>()?;
    if source.table_parquet_options().global.pushdown_filters || config.limit.is_some() {
        return None;
    }
    let predicate = source.filter()?;
    let parts = split_conjunction(&predicate);
    let plain = |p: &&Arc<dyn PhysicalExpr>| {
        p.is::<DynamicFilterPhysicalExpr>()
            && p.expression_id().is_some_and(|id| usable.contains(&id))
            && p.children().iter().all(|c| c.is::<Column>())
    };
    if parts.is_empty() || !parts.iter().all(plain) {
        return None;
    }
    let wrapped = parts
        .into_iter()
        .map(|p| Arc::new(ShortKeyList { inner: Arc::clone(p) }) as Arc<dyn PhysicalExpr>);
    let source = Arc::new(source.with_predicate(conjunction(wrapped)).with_pushdown_filters(true));
    let config = FileScanConfigBuilder::from(config.clone()).with_source(source).build();
    Some(DataSourceExec::from_data_source(config))
}

/// A join's dynamic filter as the scan applies it: as it is while the
/// join's keys are a list, every row let through while they are looked up
/// in the join's hash table (which the join does anyway).
#[derive(Debug, Eq)]
pub(crate) struct ShortKeyList {
    inner: Arc<dyn PhysicalExpr>,
}

// By hand, as DataFusion's own expressions do (derives trip on `Arc<dyn PhysicalExpr>`).
impl PartialEq for ShortKeyList {
    fn eq(&self, other: &Self) -> bool {
        self.inner.eq(&other.inner)
    }
}

impl std::hash::Hash for ShortKeyList {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
    }
}

impl fmt::Display for ShortKeyList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "short_key_list({})", self.inner)
    }
}

/// Whether the filter (as it is now) looks keys up in a join's hash table.
fn looks_up_a_table(expr: &Arc<dyn PhysicalExpr>) -> bool {
    // The closure never fails.
    expr.exists(|e| Ok(e.is::<HashTableLookupExpr>())).unwrap_or(false)
}

impl ShortKeyList {
    /// The filter as the scan applies it now.
    fn current(&self) -> DfResult<Arc<dyn PhysicalExpr>> {
        let now = snapshot_physical_expr(Arc::clone(&self.inner))?;
        // Not even the keys' range: evaluating it row by row made the reader
        // decode the key columns twice (TPC-H q9, with four joins into the
        // line items, took twice as long), and a range over keys spread
        // through the table prunes nothing.
        Ok(if looks_up_a_table(&now) { lit(true) } else { now })
    }
}

impl PhysicalExpr for ShortKeyList {
    fn data_type(&self, _input_schema: &Schema) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, input_schema: &Schema) -> DfResult<bool> {
        self.inner.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> DfResult<ColumnarValue> {
        self.current()?.evaluate(batch)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.inner]
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn PhysicalExpr>>) -> DfResult<Arc<dyn PhysicalExpr>> {
        match <[_; 1]>::try_from(children) {
            Ok([inner]) => Ok(Arc::new(ShortKeyList { inner })),
            Err(c) => datafusion::common::internal_err!("a join filter takes one child, not {}", c.len()),
        }
    }

    fn snapshot(&self) -> DfResult<Option<Arc<dyn PhysicalExpr>>> {
        self.current().map(Some)
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

    /// A Parquet file of `rows` rows: `k` (0..rows) and `v` = k * 3.
    fn write(path: &std::path::Path, rows: i64) -> DfResult<()> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows)),
                Arc::new(Int64Array::from_iter_values((0..rows).map(|k| k * 3))),
            ],
        )?;
        let file = std::fs::File::create(path)?;
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None)?;
        writer.write(&batch)?;
        writer.close()?;
        Ok(())
    }

    /// What one query gave: its result, for each Parquet scan of the plan
    /// whether it filters rows in the reader, and how many rows the
    /// readers' filters dropped.
    struct Run {
        result: Vec<RecordBatch>,
        pushdown: Vec<bool>,
        dropped: usize,
    }

    async fn run(ctx: &SessionContext, sql: &str) -> DfResult<Run> {
        let plan = ctx.sql(sql).await?.create_physical_plan().await?;
        let result = datafusion::physical_plan::collect(plan.clone(), ctx.task_ctx()).await?;
        let (mut pushdown, mut dropped) = (Vec::new(), 0);
        plan.apply(|node| {
            if let Some(source) = node
                .downcast_ref::<DataSourceExec>()
                .and_then(|e| e.data_source().downcast_ref::<FileScanConfig>())
                .and_then(|c| c.file_source().downcast_ref::<ParquetSource>())
            {
                pushdown.push(source.table_parquet_options().global.pushdown_filters);
                dropped += node
                    .metrics()
                    .and_then(|m| m.sum_by_name("pushdown_rows_pruned"))
                    .map_or(0, |v| v.as_usize());
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(Run {
            result,
            pushdown,
            dropped,
        })
    }

    #[test]
    fn scans_probed_by_a_short_key_list_alone_filter_in_the_reader_and_results_stay() -> DfResult<()> {
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        rt.block_on(async {
            let dir = tempfile::tempdir()?;
            let path = |name: &str| dir.path().join(format!("{name}.parquet"));
            write(&path("small"), 100)?;
            write(&path("mid"), 1_000)?;
            write(&path("large"), 50_000)?;
            let plain = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
            let ruled = SessionContext::new_with_state(
                SessionStateBuilder::new()
                    .with_config(SessionConfig::new().with_target_partitions(2))
                    .with_default_features()
                    .with_physical_optimizer_rule(Arc::new(JoinFilterScanRule))
                    .build(),
            );
            for ctx in [&plain, &ruled] {
                for name in ["small", "mid", "large"] {
                    ctx.register_parquet(
                        name,
                        path(name).to_string_lossy().as_ref(),
                        ParquetReadOptions::default(),
                    )
                    .await?;
                }
            }
            // The large side is probed with the small side's 100 keys: a join filter alone.
            let joined = "SELECT count(*) AS n, sum(l.v) AS s FROM small s JOIN large l ON l.k = s.v";
            // The large side carries a predicate of its own as well: left as it was.
            let filtered = "SELECT count(*) AS n, sum(l.v) AS s FROM small s JOIN large l ON l.k = s.v WHERE l.v > 7";
            // A thousand keys are looked up in the join's hash table: the scan lets every row through.
            let many = "SELECT count(*) AS n, sum(l.v) AS s FROM mid s JOIN large l ON l.k = s.v";
            // A row limit on the probed side counts every row, not only the ones
            // the join keeps: the scan's own limit, a limit folded into the
            // HAVING's filter, and an ordered limit (its own filter may apply).
            let limited = "SELECT count(*) AS n FROM small s JOIN (SELECT * FROM large LIMIT 20000) l ON l.k = s.v";
            let having = "SELECT count(*) AS n FROM small s JOIN \
                          (SELECT k, count(*) AS c FROM large GROUP BY k HAVING count(*) >= 1 LIMIT 1000) l \
                          ON l.k = s.v";
            let top = "SELECT count(*) AS n FROM small s JOIN (SELECT * FROM large ORDER BY v DESC LIMIT 20000) l \
                       ON l.k = s.v";
            // Each: the scans' pushdown and whether rows are dropped in them,
            // where fixed, and whether the result is one answer (an unordered
            // limit may keep any rows).
            let cases = [
                (joined, Some(([false, true], true)), true),
                (filtered, Some(([false, false], false)), true),
                (many, Some(([false, true], false)), true),
                (limited, Some(([false, false], false)), false),
                (having, Some(([false, false], false)), false),
                (top, None, true),
            ];
            for (sql, scans, exact) in cases {
                let (before, after) = (run(&plain, sql).await?, run(&ruled, sql).await?);
                assert_eq!(before.pushdown, [false, false], "{sql}");
                assert_eq!(before.dropped, 0, "{sql}");
                if let Some((pushdown, drops)) = scans {
                    assert_eq!(after.pushdown, pushdown, "{sql}");
                    assert_eq!(after.dropped > 0, drops, "{sql}: {} rows dropped", after.dropped);
                }
                if exact {
                    assert_eq!(before.result, after.result, "{sql}");
                }
            }
            // The top 20,000 values hold none of the small side's keys.
            let n = arrow::util::pretty::pretty_format_batches(&run(&ruled, top).await?.result)?.to_string();
            assert!(n.contains("| 0 |"), "{n}");
            let n = arrow::util::pretty::pretty_format_batches(&run(&ruled, joined).await?.result)?.to_string();
            // Keys 0, 3, ..., 297 are all in the large file; each v is three times its key.
            assert!(n.contains("| 100 | 44550 |"), "{n}");
            Ok(())
        })
    }
}
