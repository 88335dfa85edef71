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
use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNode;
use datafusion::datasource::physical_plan::{FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::ColumnarValue;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CaseExpr, Column, DynamicFilterPhysicalExpr, InListExpr, Literal, in_list, lit,
};
use datafusion::physical_expr::{PhysicalExpr, conjunction, split_conjunction};
use datafusion::physical_expr_common::physical_expr::{snapshot_generation, snapshot_physical_expr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::joins::HashTableLookupExpr;
use datafusion::physical_plan::limit::{GlobalLimitExec, LocalLimitExec};
use datafusion::physical_plan::{ChildrenPropertiesMode, ExecutionPlan, ReplaceChildrenOptions};
use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

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
        .map(|p| Arc::new(ShortKeyList::new(Arc::clone(p))) as Arc<dyn PhysicalExpr>);
    let source = Arc::new(source.with_predicate(conjunction(wrapped)).with_pushdown_filters(true));
    let config = FileScanConfigBuilder::from(config.clone()).with_source(source).build();
    Some(DataSourceExec::from_data_source(config))
}

/// The filter as the scan applies it, for the filter's generation and the
/// rows it was made for.
#[derive(Debug)]
struct Applied {
    generation: u64,
    schema: arrow::datatypes::SchemaRef,
    expr: Arc<dyn PhysicalExpr>,
}

/// A join's dynamic filter as the scan applies it: as it is while the
/// join's keys are a list, every row let through while they are looked up
/// in the join's hash table (which the join does anyway).
#[derive(Debug)]
pub(crate) struct ShortKeyList {
    inner: Arc<dyn PhysicalExpr>,
    /// The filter as applied, for the filter's generation it was made from:
    /// a join's filter changes once (when its build side is known), the
    /// scan evaluates it for every batch. (A sort's or an aggregate's own
    /// filter changes as it goes, and is made again each time.)
    applied: Mutex<Option<Applied>>,
}

// By hand, as DataFusion's own expressions do (derives trip on `Arc<dyn PhysicalExpr>`).
impl PartialEq for ShortKeyList {
    fn eq(&self, other: &Self) -> bool {
        self.inner.eq(&other.inner)
    }
}

impl Eq for ShortKeyList {}

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

/// A key list of the filter `e` stands for, if it is one: `keys IN (...)`.
fn key_list(e: &Arc<dyn PhysicalExpr>) -> Option<&InListExpr> {
    e.downcast_ref::<InListExpr>().filter(|l| !l.negated())
}

fn is_false(e: &Arc<dyn PhysicalExpr>) -> bool {
    e.downcast_ref::<Literal>()
        .is_some_and(|l| matches!(l.value(), ScalarValue::Boolean(Some(false))))
}

/// A filter that keeps at least the rows `e` keeps, cheaper to evaluate
/// row by row: any such filter gives the same join, which matches each row
/// it is given. Only AND, OR and CASE results are looked into, where
/// keeping more rows inside keeps more rows outside.
/// - `k >= a AND k <= b AND k IN (...)`: the key list alone (it implies the range);
/// - a partitioned join's `CASE partition(k) WHEN 0 THEN k IN (keys of
///   partition 0) ... ELSE false END`: one list of all the keys, so the
///   scan need not compute each row's partition (a hash per row). A key in
///   the union is in its own partition's list, the only one it can be in.
fn relax(e: Arc<dyn PhysicalExpr>, schema: &Schema) -> DfResult<Arc<dyn PhysicalExpr>> {
    if let Some(b) = e.downcast_ref::<BinaryExpr>() {
        return match b.op() {
            Operator::And if key_list(b.left()).is_some() => Ok(Arc::clone(b.left())),
            Operator::And if key_list(b.right()).is_some() => Ok(Arc::clone(b.right())),
            Operator::And | Operator::Or => {
                let (l, r) = (
                    relax(Arc::clone(b.left()), schema)?,
                    relax(Arc::clone(b.right()), schema)?,
                );
                Ok(Arc::new(BinaryExpr::new(l, *b.op(), r)))
            }
            _ => Ok(e),
        };
    }
    let Some(case) = e.downcast_ref::<CaseExpr>() else {
        return Ok(e);
    };
    if case.expr().is_none() || !case.else_expr().is_none_or(is_false) {
        return Ok(e);
    }
    let mut keys: Option<Arc<dyn PhysicalExpr>> = None;
    let mut union = Vec::new();
    for (when, then) in case.when_then_expr() {
        if !when.is::<Literal>() {
            return Ok(e);
        }
        let then = relax(Arc::clone(then), schema)?;
        if is_false(&then) {
            continue;
        }
        let Some(list) = key_list(&then) else { return Ok(e) };
        match &keys {
            Some(k) if !k.eq(list.expr()) => return Ok(e),
            _ => keys = Some(Arc::clone(list.expr())),
        }
        union.extend(list.list().iter().cloned());
    }
    match keys {
        // The lists' values have the keys' type; should the scan read them
        // as another, the filter stays as the join made it.
        Some(k) => Ok(in_list(k, union, &false, schema).unwrap_or(e)),
        None => Ok(lit(false)),
    }
}

impl ShortKeyList {
    fn new(inner: Arc<dyn PhysicalExpr>) -> ShortKeyList {
        ShortKeyList {
            inner,
            applied: Mutex::new(None),
        }
    }

    /// The filter as it is now, or every row while it looks keys up in a table.
    fn current(&self) -> DfResult<Arc<dyn PhysicalExpr>> {
        let now = snapshot_physical_expr(Arc::clone(&self.inner))?;
        // Not even the keys' range: evaluating it row by row made the reader
        // decode the key columns twice (TPC-H q9, with four joins into the
        // line items, took twice as long), and a range over keys spread
        // through the table prunes nothing.
        Ok(if looks_up_a_table(&now) { lit(true) } else { now })
    }

    /// The filter as the scan evaluates it over rows of `schema`: the
    /// current one with each key list on its own (any filter that keeps at
    /// least the rows this one keeps gives the same join), made once per
    /// change of the filter.
    fn applied(&self, schema: &arrow::datatypes::SchemaRef) -> DfResult<Arc<dyn PhysicalExpr>> {
        let generation = snapshot_generation(&self.inner);
        let mut cache = self.applied.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(a) = cache.as_ref()
            && a.generation == generation
            && (Arc::ptr_eq(&a.schema, schema) || a.schema == *schema)
        {
            return Ok(Arc::clone(&a.expr));
        }
        let expr = relax(self.current()?, schema)?;
        *cache = Some(Applied {
            generation,
            schema: Arc::clone(schema),
            expr: Arc::clone(&expr),
        });
        Ok(expr)
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
        self.applied(batch.schema_ref())?.evaluate(batch)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.inner]
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn PhysicalExpr>>) -> DfResult<Arc<dyn PhysicalExpr>> {
        match <[_; 1]>::try_from(children) {
            Ok([inner]) => Ok(Arc::new(ShortKeyList::new(inner))),
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
    use arrow::array::{Array, Int64Array, RecordBatch};
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
            // Both join sides hashed into partitions: the filter routes each row
            // to its partition's keys (a CASE), and the scan reads one list.
            let parted = SessionContext::new_with_state(
                SessionStateBuilder::new()
                    .with_config(
                        SessionConfig::new()
                            .with_target_partitions(2)
                            .set_usize("datafusion.optimizer.hash_join_single_partition_threshold", 0)
                            .set_usize("datafusion.optimizer.hash_join_single_partition_threshold_rows", 0),
                    )
                    .with_default_features()
                    .with_physical_optimizer_rule(Arc::new(JoinFilterScanRule))
                    .build(),
            );
            for ctx in [&plain, &ruled, &parted] {
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
            for sql in [joined, filtered, many] {
                let (before, after) = (run(&plain, sql).await?, run(&parted, sql).await?);
                assert_eq!(before.result, after.result, "{sql}");
                assert_eq!(
                    after.dropped > 0,
                    sql == joined,
                    "{sql}: {} rows dropped",
                    after.dropped
                );
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

    /// `k` over 0..12 and a null.
    fn keys() -> DfResult<RecordBatch> {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]));
        let k = Int64Array::from_iter((0..12).map(Some).chain([None]));
        Ok(RecordBatch::try_new(schema, vec![Arc::new(k)])?)
    }

    fn rows_kept(e: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> DfResult<Vec<bool>> {
        let kept = e.evaluate(batch)?.into_array(batch.num_rows())?;
        let kept = arrow::array::AsArray::as_boolean(&kept);
        Ok((0..kept.len()).map(|i| kept.is_valid(i) && kept.value(i)).collect())
    }

    #[test]
    fn a_partitioned_joins_key_lists_become_one_list_keeping_the_same_rows() -> DfResult<()> {
        use datafusion::physical_expr::expressions::col;
        let batch = keys()?;
        let schema = batch.schema();
        let k = col("k", &schema)?;
        let list = |keys: &[i64]| -> DfResult<Arc<dyn PhysicalExpr>> {
            in_list(Arc::clone(&k), keys.iter().map(|v| lit(*v)).collect(), &false, &schema)
        };
        let cmp = |op, v: i64| Arc::new(BinaryExpr::new(Arc::clone(&k), op, lit(v))) as Arc<dyn PhysicalExpr>;
        let and = |l, r| Arc::new(BinaryExpr::new(l, Operator::And, r)) as Arc<dyn PhysicalExpr>;
        // As a partitioned join makes it: each row's partition (here k % 3),
        // then that partition's keys and their range; one partition is empty.
        let part = Arc::new(BinaryExpr::new(Arc::clone(&k), Operator::Modulo, lit(3i64))) as Arc<dyn PhysicalExpr>;
        let branch = |keys: &[i64]| -> DfResult<Arc<dyn PhysicalExpr>> {
            let range = and(cmp(Operator::GtEq, keys[0]), cmp(Operator::LtEq, keys[keys.len() - 1]));
            Ok(and(range, list(keys)?))
        };
        let case = |then2: Arc<dyn PhysicalExpr>| -> DfResult<Arc<dyn PhysicalExpr>> {
            Ok(Arc::new(CaseExpr::try_new(
                Some(Arc::clone(&part)),
                vec![
                    (lit(0i64), branch(&[3, 9])?),
                    (lit(1i64), branch(&[1, 4, 10])?),
                    (lit(2i64), then2),
                ],
                Some(lit(false)),
            )?))
        };
        let routed = case(lit(false))?;
        let relaxed = relax(Arc::clone(&routed), &schema)?;
        let one = relaxed.downcast_ref::<InListExpr>().expect("one key list");
        assert_eq!(one.len(), 5);
        assert_eq!(rows_kept(&relaxed, &batch)?, rows_kept(&routed, &batch)?);
        let want: Vec<bool> = (0..12).map(|v| [1, 3, 4, 9, 10].contains(&v)).chain([false]).collect();
        assert_eq!(rows_kept(&relaxed, &batch)?, want);
        // Rows with a NULL key, which a null-aware join keeps, stay beside the list.
        let with_nulls = Arc::new(BinaryExpr::new(
            Arc::clone(&routed),
            Operator::Or,
            Arc::new(datafusion::physical_expr::expressions::IsNullExpr::new(Arc::clone(&k))),
        )) as Arc<dyn PhysicalExpr>;
        let relaxed_nulls = relax(Arc::clone(&with_nulls), &schema)?;
        assert_eq!(rows_kept(&relaxed_nulls, &batch)?, rows_kept(&with_nulls, &batch)?);
        // A partition whose keys are unknown lets every row through: left as it is.
        let unknown = case(lit(true))?;
        assert!(Arc::ptr_eq(&relax(Arc::clone(&unknown), &schema)?, &unknown));
        // Under NOT, a list with more keys would keep fewer rows: left as it is.
        let negated = Arc::new(datafusion::physical_expr::expressions::NotExpr::new(Arc::clone(
            &routed,
        ))) as Arc<dyn PhysicalExpr>;
        assert!(Arc::ptr_eq(&relax(Arc::clone(&negated), &schema)?, &negated));
        Ok(())
    }
}
