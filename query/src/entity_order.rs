//! The plan rule that lets a measure over records keyed by person fold its
//! entities in the partial aggregation (`measured::ordered`).
//!
//! A dataset registered with `--entity` stores its rows in the order of the
//! hidden entity key (`stored_key`). Where a partial aggregation reads that
//! key straight from the scan, through nothing but projections, filters and
//! batch coalescing (none of which reorders rows within a partition), each
//! of its partitions sees each group's entities in key order. Only there is
//! the hidden measure replaced by its ordered form, in the partial and the
//! final aggregation together (their states must agree), and the scan told
//! to keep its partitions' ranges to themselves (no work stealing between
//! partitions, which could hand one partition a later range before an
//! earlier one). A file too small to split is read as one partition rather
//! than dealt out batch by batch. Joins, unions, sorts, repartitions by
//! hash and anything else leave the plan as it was.
//!
//! Nothing here is the job's to choose: the key column's name is reserved,
//! so only the host's projection of a keyed file carries it, and the
//! ordered form checks the order as it goes (see `measured::ordered`).

use crate::measured;
use crate::stored_key::STORED_ENTITY_KEY;
use arrow::datatypes::DataType;
use datafusion::common::Result as DfResult;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::physical_plan::{FileScanConfig, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::aggregate::{AggregateExprBuilder, AggregateFunctionExpr};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, ExecutionPlan, ExecutionPlanProperties, Partitioning, ReplaceChildrenOptions,
};
use std::sync::Arc;

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct EntityOrderRule;

impl PhysicalOptimizerRule for EntityOrderRule {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            Ok(match ordered(&node)? {
                Some(new) => Transformed::yes(new),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "inland_entity_order"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `node`, a final aggregation, with its hidden measures in ordered form
/// wherever their partial aggregation reads the stored key in order.
fn ordered(node: &Arc<dyn ExecutionPlan>) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    let Some(last) = node.downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    if !matches!(last.mode(), AggregateMode::Final | AggregateMode::FinalPartitioned) {
        return Ok(None);
    }
    // Between the phases only partial states move.
    let mut between: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
    let mut at = Arc::clone(last.input());
    while at.downcast_ref::<AggregateExec>().is_none() {
        let moves_states =
            at.downcast_ref::<RepartitionExec>().is_some() || at.downcast_ref::<CoalescePartitionsExec>().is_some();
        let [child] = at.children()[..] else {
            return Ok(None);
        };
        if !moves_states {
            return Ok(None);
        }
        let child = Arc::clone(child);
        between.push(at);
        at = child;
    }
    let Some(first) = at.downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    if *first.mode() != AggregateMode::Partial
        || first.aggr_expr().len() != last.aggr_expr().len()
        || first.input_schema() != last.input_schema()
    {
        return Ok(None);
    }
    let mut input = Arc::clone(first.input());
    // Each phase keeps its own expressions (DataFusion may have tuned the
    // partial's); only the measure is replaced, in both.
    let n = first.aggr_expr().len();
    let (mut partials, mut finals) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut changed = false;
    for (e, l) in first.aggr_expr().iter().zip(last.aggr_expr()) {
        let args = e.expressions();
        let twin =
            measured::ordered_twin(e.fun()).filter(|_| !e.is_distinct() && e.name() == l.name() && e.fun() == l.fun());
        let key = twin
            .as_ref()
            .and_then(|(_, at)| args.get(*at))
            .and_then(|a| a.downcast_ref::<Column>())
            .map(|c| c.index());
        let twin = twin.map(|(udf, _)| udf);
        let scan = key.and_then(|k| in_key_order(&input, k).transpose()).transpose()?;
        match (twin, scan) {
            (Some(twin), Some(scan)) => {
                let twin = Arc::new(twin);
                partials.push(twin_of(e, &twin, first.input_schema())?);
                finals.push(twin_of(l, &twin, last.input_schema())?);
                input = scan;
                changed = true;
            }
            _ => {
                partials.push(Arc::clone(e));
                finals.push(Arc::clone(l));
            }
        }
    }
    if !changed {
        return Ok(None);
    }
    let partial = AggregateExec::try_new(
        AggregateMode::Partial,
        first.group_expr().clone(),
        partials,
        first.filter_expr().to_vec(),
        input,
        first.input_schema(),
    )?
    .with_new_limit_options(first.limit_options());
    let mut child: Arc<dyn ExecutionPlan> = Arc::new(partial);
    for node in between.into_iter().rev() {
        child = node.replace_children(vec![child], recompute())?;
    }
    let last = AggregateExec::try_new(
        *last.mode(),
        last.group_expr().clone(),
        finals,
        last.filter_expr().to_vec(),
        child,
        last.input_schema(),
    )?
    .with_new_limit_options(last.limit_options());
    Ok(Some(Arc::new(last)))
}

fn recompute() -> ReplaceChildrenOptions {
    ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute)
}

/// `e` calling `twin` instead, with the same arguments and name.
fn twin_of(
    e: &AggregateFunctionExpr,
    twin: &Arc<datafusion::logical_expr::AggregateUDF>,
    schema: arrow::datatypes::SchemaRef,
) -> DfResult<Arc<AggregateFunctionExpr>> {
    let built = AggregateExprBuilder::new(Arc::clone(twin), e.expressions())
        .schema(schema)
        .alias(e.name())
        .with_ignore_nulls(e.ignore_nulls())
        .build()?;
    Ok(Arc::new(built))
}

/// `plan` with its scan keeping partitions to themselves, if column `column`
/// of its output is the stored entity key read straight from one keyed file
/// and nothing on the way reorders rows within a partition; `None` otherwise.
fn in_key_order(plan: &Arc<dyn ExecutionPlan>, column: usize) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    let below = |input: &Arc<dyn ExecutionPlan>, column: usize| -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        match in_key_order(input, column)? {
            Some(new) => Ok(Some(Arc::clone(plan).replace_children(vec![new], recompute())?)),
            None => Ok(None),
        }
    };
    if let Some(p) = plan.downcast_ref::<ProjectionExec>() {
        let Some(c) = p.expr().get(column).and_then(|e| e.expr.downcast_ref::<Column>()) else {
            return Ok(None);
        };
        return below(p.input(), c.index());
    }
    if let Some(f) = plan.downcast_ref::<FilterExec>() {
        let column = match f.projection() {
            Some(p) => match p.get(column) {
                Some(&c) => c,
                None => return Ok(None),
            },
            None => column,
        };
        return below(f.input(), column);
    }
    // One partition dealt out batch by batch: each partition would see its
    // rows in order but an entity's rows could reach two of them, one of
    // which folds it. The partial aggregation reads the one partition
    // instead (a file too small to split by the planner's measure).
    if let Some(r) = plan.downcast_ref::<RepartitionExec>() {
        let dealt = matches!(r.partitioning(), Partitioning::RoundRobinBatch(_));
        if !dealt || r.input().output_partitioning().partition_count() != 1 {
            return Ok(None);
        }
        return in_key_order(r.input(), column);
    }
    let Some(exec) = plan.downcast_ref::<DataSourceExec>() else {
        return Ok(None);
    };
    let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>() else {
        return Ok(None);
    };
    if config.file_source().downcast_ref::<ParquetSource>().is_none() || !stored_key_at(config, column) {
        return Ok(None);
    }
    // One file, cut into byte ranges that rise partition by partition and
    // within each: every partition reads whole row groups of its own, in
    // the key order they were stored in.
    let files: Vec<_> = config.file_groups.iter().flat_map(|g| g.files()).collect();
    let Some(one) = files.first() else {
        return Ok(None);
    };
    if files.iter().any(|f| f.object_meta.location != one.object_meta.location) {
        return Ok(None);
    }
    let in_file_order = match files[..] {
        [_] => true,
        _ => files.windows(2).all(|w| match (&w[0].range, &w[1].range) {
            (Some(a), Some(b)) => a.start < a.end && a.end <= b.start,
            _ => false,
        }),
    };
    // Sort pushdown may have told the reader to take row groups in another
    // order (shown only in the plan's text; a false alarm costs speed only).
    let shown = datafusion::physical_plan::displayable(plan.as_ref())
        .one_line()
        .to_string();
    if !in_file_order || shown.contains("reverse_row_groups") || shown.contains("sort_order_for_reorder") {
        return Ok(None);
    }
    if config.preserve_order {
        return Ok(Some(Arc::clone(plan)));
    }
    let kept = FileScanConfigBuilder::from(config.clone())
        .with_preserve_order(true)
        .build();
    Ok(Some(DataSourceExec::from_data_source(kept)))
}

/// Whether output column `column` of the scan is the file's stored entity
/// key, as stored (not an expression over it, nor another column so named).
fn stored_key_at(config: &FileScanConfig, column: usize) -> bool {
    let table = config.file_source().table_schema().table_schema();
    let index = match config.file_source().projection() {
        None => Some(column),
        Some(p) => p.as_ref().get(column).and_then(|e| {
            let c = e.expr.downcast_ref::<Column>()?;
            (e.alias == STORED_ENTITY_KEY).then_some(c.index())
        }),
    };
    index
        .and_then(|i| table.fields().get(i))
        .is_some_and(|f| f.name() == STORED_ENTITY_KEY && f.data_type() == &DataType::UInt64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, AsArray, Float64Array, RecordBatch, StringArray, UInt64Array};
    use arrow::datatypes::{Field, Schema};
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

    /// Records stored as a keyed dataset stores them: sorted by the key
    /// column, in small row groups, so a scan splits into partitions whose
    /// ranges cut through people's rows. Quarter values: exact sums.
    fn write(path: &std::path::Path, key_name: &str) -> DfResult<()> {
        let mut rng = crate::test_rng(3);
        let mut keys: Vec<u64> = (0..3_000).map(|_| rng() | 1).collect();
        keys.sort_unstable();
        let (mut g, mut v, mut e) = (Vec::new(), Vec::new(), Vec::new());
        for &k in &keys {
            for _ in 0..=(rng() % 3) {
                let r = rng();
                g.push(["a", "b", "c"][(r % 3) as usize]);
                v.push((r >> 8) as f64 % 500.0 * 0.25);
                e.push(k);
            }
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Utf8, false),
            Field::new("v", DataType::Float64, false),
            Field::new(key_name, DataType::UInt64, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(g)),
            Arc::new(Float64Array::from(v)),
            Arc::new(UInt64Array::from(e)),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(700))
            .build();
        let file = std::fs::File::create(path)?;
        let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props))?;
        w.write(&batch)?;
        w.close()?;
        Ok(())
    }

    /// `split`: three partitions over a small file, as over a large one by
    /// default (small batches: the planner splits no scan of fewer rows than
    /// one); otherwise the planner deals its batches out to three.
    async fn session(ordered: bool, split: bool, dir: &std::path::Path) -> DfResult<SessionContext> {
        let min_size = if split { 0 } else { 1 << 30 };
        let config = SessionConfig::new()
            .with_target_partitions(3)
            .with_batch_size(256)
            .set_usize("datafusion.optimizer.repartition_file_min_size", min_size);
        let mut state = SessionStateBuilder::new().with_config(config).with_default_features();
        if ordered {
            state = state.with_physical_optimizer_rule(Arc::new(EntityOrderRule));
        }
        let ctx = SessionContext::new_with_state(state.build());
        ctx.register_udaf(measured::udaf(3, 9));
        ctx.register_udaf(crate::contrib::entities_udaf(3, false, 9));
        for (name, file) in [("keyed", "keyed.parquet"), ("other", "other.parquet")] {
            let path = dir.join(file);
            let path = path.to_str().unwrap_or_default();
            ctx.register_parquet(name, path, ParquetReadOptions::default()).await?;
        }
        Ok(ctx)
    }

    /// The plan as text (with the name of each function its aggregations
    /// call, which the text does not show) and the hidden measure's figures
    /// and sketches.
    async fn run(ctx: &SessionContext, sql: &str) -> DfResult<(String, Vec<(String, Vec<f64>, Vec<u8>)>)> {
        let df = ctx.sql(sql).await?;
        let plan = df.clone().create_physical_plan().await?;
        let mut shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(true)
            .to_string();
        plan.apply(|node| {
            if let Some(a) = node.downcast_ref::<AggregateExec>() {
                for e in a.aggr_expr() {
                    shown.push_str(&format!("\ncalls {}", e.fun().name()));
                }
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })?;
        let mut rows = Vec::new();
        for batch in df.collect().await? {
            // Parquet's strings are read as views.
            let g = arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
            let (g, m) = (g.as_string::<i32>(), batch.column(1).as_struct());
            let (figures, sketches) = (m.column(0).as_list::<i32>(), m.column(1).as_binary::<i32>());
            for i in 0..batch.num_rows() {
                let f = figures.value(i);
                let f = f.as_primitive::<arrow::datatypes::Float64Type>().values().to_vec();
                rows.push((g.value(i).to_string(), f, sketches.value(i).to_vec()));
            }
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((shown, rows))
    }

    /// Over a keyed file read straight into the aggregation, the ordered
    /// form is planned (the scan split in three, no work stealing; or, a
    /// scan the planner would deal out batch by batch, read as one), and it
    /// gives what the listing form gives.
    #[tokio::test]
    async fn a_keyed_scan_straight_into_the_aggregation_folds_and_gives_the_same_facts() -> DfResult<()> {
        let dir = tempfile::tempdir()?;
        write(&dir.path().join("keyed.parquet"), STORED_ENTITY_KEY)?;
        write(&dir.path().join("other.parquet"), "person")?;
        for split in [true, false] {
            let on = session(true, split, dir.path()).await?;
            let off = session(false, split, dir.path()).await?;
            for sql in [
                "SELECT g, inland_measured_entities(v, \"__inland_entity\") FROM keyed GROUP BY g",
                "SELECT g, inland_measured_entities(v, \"__inland_entity\") FROM keyed WHERE v > 20 GROUP BY g",
            ] {
                let (plan, got) = run(&on, sql).await?;
                let (plain, want) = run(&off, sql).await?;
                assert!(plan.contains(measured::ORDERED_NAME), "{plan}");
                let groups = if split {
                    "file_groups={3 groups"
                } else {
                    "file_groups={1 group"
                };
                assert!(plan.contains(groups), "{plan}");
                assert!(!plan.contains("RoundRobinBatch"), "{plan}");
                assert!(!plain.contains(measured::ORDERED_NAME), "{plain}");
                assert_eq!(split, !plain.contains("RoundRobinBatch"), "{plain}");
                assert_eq!(got.len(), 3, "{sql}");
                assert_eq!(got, want, "{sql}");
            }
        }
        Ok(())
    }

    /// The functions a plan's aggregations call, and the sketches (second
    /// column) it gives.
    async fn sketches(ctx: &SessionContext, sql: &str) -> DfResult<(Vec<String>, Vec<Vec<u8>>)> {
        let df = ctx.sql(sql).await?;
        let plan = df.clone().create_physical_plan().await?;
        let mut calls = Vec::new();
        plan.apply(|node| {
            if let Some(a) = node.downcast_ref::<AggregateExec>() {
                calls.extend(a.aggr_expr().iter().map(|e| e.fun().name().to_string()));
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })?;
        let mut out: Vec<Vec<u8>> = Vec::new();
        for batch in df.collect().await? {
            let b = batch.column(1).as_binary::<i32>();
            out.extend((0..batch.num_rows()).map(|i| b.value(i).to_vec()));
        }
        Ok((calls, out))
    }

    /// A count's entities alone (`inland_entities`, with a contribution or
    /// without, grouped or not) fold the same way over a keyed scan, and
    /// give the same sketches, byte for byte, as listing every entity; the
    /// same rows twice (a union) keep the listing form.
    #[tokio::test]
    async fn a_count_over_a_keyed_scan_folds_its_entities_and_gives_the_same_sketches() -> DfResult<()> {
        let dir = tempfile::tempdir()?;
        write(&dir.path().join("keyed.parquet"), STORED_ENTITY_KEY)?;
        write(&dir.path().join("other.parquet"), "person")?;
        for split in [true, false] {
            let on = session(true, split, dir.path()).await?;
            let off = session(false, split, dir.path()).await?;
            for sql in [
                "SELECT g, inland_entities(\"__inland_entity\") FROM keyed GROUP BY g ORDER BY g",
                "SELECT g, inland_entities(\"__inland_entity\", v) FROM keyed WHERE v > 20 GROUP BY g ORDER BY g",
                "SELECT 'all', inland_entities(\"__inland_entity\", v) FROM keyed",
            ] {
                let (calls, got) = sketches(&on, sql).await?;
                let (plain, want) = sketches(&off, sql).await?;
                assert_eq!(calls, [measured::ORDERED_ENTITIES_NAME; 2], "{sql}");
                assert_eq!(plain, [crate::contrib::ENTITIES; 2], "{sql}");
                // Some group reaches the threshold: a sketch, not a count alone.
                assert!(got.iter().any(|s| s.len() > 8), "{sql}");
                assert_eq!(got, want, "{sql}");
            }
            let twice = "SELECT g, inland_entities(\"__inland_entity\") FROM \
                         (SELECT * FROM keyed UNION ALL SELECT * FROM keyed) GROUP BY g ORDER BY g";
            let (calls, got) = sketches(&on, twice).await?;
            assert_eq!(calls, [crate::contrib::ENTITIES; 2], "{twice}");
            assert_eq!(got, sketches(&off, twice).await?.1);
        }
        Ok(())
    }

    /// Anything that could put a partition's rows out of key order, or a
    /// key that is not the stored one, leaves the listing form in place.
    #[tokio::test]
    async fn anything_but_the_stored_key_read_in_order_keeps_the_listing_form() -> DfResult<()> {
        let dir = tempfile::tempdir()?;
        write(&dir.path().join("keyed.parquet"), STORED_ENTITY_KEY)?;
        write(&dir.path().join("other.parquet"), "person")?;
        let (on, off) = (
            session(true, true, dir.path()).await?,
            session(false, true, dir.path()).await?,
        );
        for sql in [
            // Another column of the same values.
            "SELECT g, inland_measured_entities(v, person) FROM other GROUP BY g",
            // An expression over the key.
            "SELECT g, inland_measured_entities(v, \"__inland_entity\" | CAST(1 AS BIGINT UNSIGNED)) FROM keyed GROUP BY g",
            // The same rows twice: two scans' partitions.
            "SELECT g, inland_measured_entities(v, \"__inland_entity\") FROM \
             (SELECT * FROM keyed UNION ALL SELECT * FROM keyed) GROUP BY g",
            // Rows through a join.
            "SELECT k.g, inland_measured_entities(k.v, k.\"__inland_entity\") FROM keyed k \
             JOIN other o ON k.\"__inland_entity\" = o.person AND k.v = o.v GROUP BY k.g",
            // Rows through a sort.
            "SELECT g, inland_measured_entities(v, \"__inland_entity\") FROM \
             (SELECT * FROM keyed ORDER BY v LIMIT 100000) GROUP BY g",
        ] {
            let (plan, got) = run(&on, sql).await?;
            let (_, want) = run(&off, sql).await?;
            assert!(!plan.contains(measured::ORDERED_NAME), "{sql}\n{plan}");
            assert_eq!(got, want, "{sql}");
        }
        Ok(())
    }
}
