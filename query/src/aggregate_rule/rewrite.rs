//! The rewrite: the one aggregation over protected data counts the
//! distinct entities behind each group, computes the hidden contributions,
//! and gets the small-group filter right above it.

use super::lineage::{refuse, unalias};
use crate::contrib;
use crate::guard::{QueryError, QueryScope};
use crate::hidden::{ENTITY, GROUP_SIZE, MEASURED, SKETCH};
use crate::keep::Keep;
use crate::measured;
use crate::row_contrib;
use crate::row_contrib::Derived;
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, Expr, Filter, Limit, LogicalPlan, Projection, Sort, SubqueryAlias, TableScanBuilder, Window, col,
};
use std::sync::Arc;

/// Adds the entity column to every node from the scan up to (not including) the aggregate.
pub(super) fn thread_entity(plan: &LogicalPlan, scope: &QueryScope) -> Result<LogicalPlan, QueryError> {
    Ok(match plan {
        LogicalPlan::TableScan(scan) => {
            let schema = scan.source.schema();
            let entity = schema
                .index_of(ENTITY)
                .map_err(|_| QueryError::Internal("policy table without entity".into()))?;
            let mut projection = scan
                .projection
                .clone()
                .unwrap_or_else(|| (0..schema.fields().len()).collect());
            if !projection.contains(&entity) {
                projection.push(entity);
            }
            LogicalPlan::TableScan(
                TableScanBuilder::new(scan.table_name.clone(), scan.source.clone())
                    .with_projection(Some(projection))
                    .with_filters(scan.filters.clone())
                    .with_fetch(scan.fetch)
                    .build()
                    .map_err(rewrite_error)?,
            )
        }
        LogicalPlan::Projection(p) => {
            let input = thread_entity(&p.input, scope)?;
            let mut exprs = p.expr.clone();
            if !p.schema.fields().iter().any(|f| f.name() == ENTITY) {
                exprs.push(Expr::Column(Column::from_name(ENTITY)));
            }
            LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(input)).map_err(rewrite_error)?)
        }
        LogicalPlan::Filter(f) => LogicalPlan::Filter(
            Filter::try_new(f.predicate.clone(), Arc::new(thread_entity(&f.input, scope)?)).map_err(rewrite_error)?,
        ),
        LogicalPlan::SubqueryAlias(a) => LogicalPlan::SubqueryAlias(
            SubqueryAlias::try_new(Arc::new(thread_entity(&a.input, scope)?), a.alias.clone())
                .map_err(rewrite_error)?,
        ),
        LogicalPlan::Limit(l) => LogicalPlan::Limit(Limit {
            skip: l.skip.clone(),
            fetch: l.fetch.clone(),
            input: Arc::new(thread_entity(&l.input, scope)?),
        }),
        LogicalPlan::Join(j) => {
            // Entities come from one protected side: the only one, or (two
            // protected sides joined on their entity columns) either, as every
            // row's two entities are the same.
            let (left, right) = if reads_protected(&j.left, scope) {
                (
                    thread_entity(&j.left, scope)?,
                    without_entity(j.right.as_ref().clone())?,
                )
            } else {
                (
                    without_entity(j.left.as_ref().clone())?,
                    thread_entity(&j.right, scope)?,
                )
            };
            let joined = plan
                .with_new_exprs(plan.expressions(), vec![left, right])
                .map_err(rewrite_error)?;
            if joined.schema().index_of_column_by_name(None, ENTITY).is_none() {
                return Err(refuse(
                    "this join keeps no rows of the protected dataset, so small groups cannot be counted; \
                     aggregate the protected dataset on its side of the join",
                ));
            }
            joined
        }
        _ => {
            return Err(refuse(
                "this query shape cannot carry the entity count needed for small-group suppression",
            ));
        }
    })
}

/// Whether an aggregate is a plain `count(*)`: every row of its group, no
/// DISTINCT, no FILTER.
pub(super) fn counts_rows(e: &Expr) -> bool {
    let Expr::AggregateFunction(AggregateFunction { func, params }) = unalias(e) else {
        return false;
    };
    func.name() == "count"
        && !params.distinct
        && params.filter.is_none()
        && match params.args.as_slice() {
            [] => true,
            [Expr::Literal(v, _)] => !v.is_null(),
            _ => false,
        }
}

/// Whether every row of `plan` is a distinct row of one dataset whose entity
/// column is unique (see [`QueryScope::unique_entities`]): scans narrowed by
/// filters and projections only, nothing that can repeat or combine rows.
pub(super) fn one_row_per_entity(plan: &LogicalPlan, scope: &QueryScope) -> bool {
    match plan {
        LogicalPlan::TableScan(t) => scope.unique_entities.contains(t.table_name.table()),
        LogicalPlan::Projection(p) => one_row_per_entity(&p.input, scope),
        LogicalPlan::Filter(f) => one_row_per_entity(&f.input, scope),
        LogicalPlan::SubqueryAlias(a) => one_row_per_entity(&a.input, scope),
        LogicalPlan::Limit(l) => one_row_per_entity(&l.input, scope),
        _ => false,
    }
}

/// Whether a plan reads a dataset that is not unrestricted.
pub(super) fn reads_protected(plan: &LogicalPlan, scope: &QueryScope) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|n| {
        if let LogicalPlan::TableScan(t) = n
            && !scope.unrestricted.contains(t.table_name.table())
        {
            found = true;
            return Ok(datafusion::common::tree_node::TreeNodeRecursion::Stop);
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    found
}

/// Whether `e` is an `avg` or `sum` of one `Float64` value, with no DISTINCT,
/// FILTER or ORDER BY: DataFusion then adds the values of each group one by
/// one in row order (and partial sums in arrival order) from 0.0, as the
/// contributions' total does, so the two are the same bits.
pub(super) fn fusable(e: &Expr, input: &DFSchema) -> Option<Derived> {
    use datafusion::logical_expr::ExprSchemable;
    let Expr::AggregateFunction(AggregateFunction { func, params }) = unalias(e) else {
        return None;
    };
    let kind = match func.name() {
        "avg" => Derived::Mean,
        "sum" => Derived::Sum,
        _ => return None,
    };
    let [arg] = params.args.as_slice() else {
        return None;
    };
    let plain = !params.distinct && params.filter.is_none() && params.order_by.is_empty();
    let float = arg.get_type(input).ok() == Some(arrow::datatypes::DataType::Float64)
        && e.get_type(input).ok() == Some(arrow::datatypes::DataType::Float64);
    (plain && float).then_some(kind)
}

/// The one-row-per-entity aggregation with whatever the contributions
/// already compute taken from them, not computed a second time: they add
/// every value of the group and count its rows, so the job's floating-point
/// `avg` is their total over the rows that had a value, its `sum` the total
/// itself (NULL where no row had one, as in DataFusion), and its `count(*)`,
/// which is also the group size the filter reads, their row count. Such a
/// query then costs DataFusion no more aggregate work with the policy than
/// without it. `None` where the aggregation has no contributions to read.
///
/// Only with GROUP BY: without it DataFusion sums a whole batch at a time,
/// in another order, and the bits could differ.
pub(super) fn fused_per_row(
    a: &Aggregate,
    threaded: &LogicalPlan,
    hidden: &[(usize, String)],
    keep: &Keep,
    scope: &QueryScope,
) -> Result<Option<Rewritten>, QueryError> {
    use crate::row_contrib::{Derived, derived};
    if hidden.is_empty() || a.group_expr.is_empty() || a.group_expr.iter().any(|g| matches!(g, Expr::GroupingSet(_))) {
        return Ok(None);
    }
    let input = a.input.schema();
    // Hidden measures carry no FILTER (`check_aggregate` refuses one), so
    // each contributions column sees every row of its group, as count(*) does.
    let fused: Vec<Option<Derived>> = a
        .aggr_expr
        .iter()
        .enumerate()
        .map(|(j, e)| {
            if counts_rows(e) {
                return Some(Derived::Rows);
            }
            hidden.iter().any(|(h, _)| *h == j).then(|| fusable(e, input)).flatten()
        })
        .collect();
    let groups = a.group_expr.len();
    // Where each aggregate the job asked for and that stays sits in the new aggregation.
    let mut position = vec![None; a.aggr_expr.len()];
    let mut aggr = Vec::new();
    for (j, e) in a.aggr_expr.iter().enumerate() {
        if fused[j].is_none() {
            position[j] = Some(groups + aggr.len());
            aggr.push(e.clone());
        }
    }
    // One contributions column per distinct argument (`avg(x)` and `sum(x)`
    // share one); `computed[k]` names the column hidden measure k reads.
    let mut computed: Vec<&str> = Vec::with_capacity(hidden.len());
    let mut args: Vec<(&Expr, &str)> = Vec::new();
    for (j, name) in hidden {
        let Some(Expr::AggregateFunction(f)) = a.aggr_expr.get(*j).map(unalias) else {
            return Err(QueryError::Internal("suppression rewrite: hidden measure".into()));
        };
        let Some(arg) = f.params.args.first() else {
            return Err(QueryError::Internal("suppression rewrite: hidden measure".into()));
        };
        match args.iter().find(|(a, _)| *a == arg) {
            Some((_, first)) => computed.push(first),
            None => {
                args.push((arg, name));
                computed.push(name);
                aggr.push(row_contrib::udaf().call(vec![arg.clone()]).alias(name));
            }
        }
    }
    let Some(first) = computed.first() else {
        return Err(QueryError::Internal("suppression rewrite: no contributions".into()));
    };
    aggr.push(sketch_of(a, hidden, keep, scope, true, col(format!("\"{ENTITY}\""))));
    let agg = Aggregate::try_new(Arc::new(threaded.clone()), a.group_expr.clone(), aggr).map_err(rewrite_error)?;
    let columns = agg.schema.columns();
    // Rows are entities: the group size is the contributions' row count.
    let size = derived(Derived::Rows).call(vec![Expr::Column(Column::from_name(*first))]);
    // The job's columns, in its order.
    let mut columns_out: Vec<Expr> = columns.iter().take(groups).cloned().map(Expr::Column).collect();
    for (j, kind) in fused.iter().enumerate() {
        let value = match kind {
            None => {
                let column = position[j].and_then(|p| columns.get(p)).cloned();
                Expr::Column(
                    column.ok_or_else(|| QueryError::Internal("suppression rewrite: aggregate column".into()))?,
                )
            }
            Some(Derived::Rows) => size.clone(),
            Some(kind) => {
                let Some(name) = hidden.iter().position(|(h, _)| *h == j).and_then(|k| computed.get(k)) else {
                    return Err(QueryError::Internal("suppression rewrite: fused measure".into()));
                };
                derived(*kind).call(vec![Expr::Column(Column::from_name(*name))])
            }
        };
        columns_out.push(value);
    }
    let mut tail: Vec<Expr> = hidden
        .iter()
        .zip(&computed)
        .map(|((_, name), source)| named(Expr::Column(Column::from_name(*source)), name))
        .collect();
    tail.push(Expr::Column(Column::from_name(SKETCH)));
    tail.push(size.clone().alias(GROUP_SIZE));
    Ok(Some(Rewritten {
        core: keep.over(size, LogicalPlan::Aggregate(agg)).map_err(rewrite_error)?,
        columns: columns_out,
        tail,
    }))
}

/// The measure a sketch's values add up: the first hidden measure whose
/// argument is a column of a dataset, one of an aggregate-only column
/// first (so a decoy `sum(1)` or `avg(age)` in front does not take the
/// sketch's lane), as its position in `hidden`, its argument as `Float64`,
/// and its source column's tag (only sketches of the same measure compare
/// contributions).
fn sketch_measure(a: &Aggregate, hidden: &[(usize, String)], scope: &QueryScope) -> Option<(usize, Expr, u64)> {
    use datafusion::logical_expr::ExprSchemable;
    let candidates = hidden.iter().enumerate().filter_map(|(k, (j, _))| {
        let Expr::AggregateFunction(f) = unalias(a.aggr_expr.get(*j)?) else {
            return None;
        };
        let arg = f.params.args.first()?;
        let Expr::Column(c) = super::source::strip(arg) else {
            return None;
        };
        let (dataset, column) = super::source::source(&a.input, c)?;
        let tag = inland_gate::facts::text_hash(&format!("{dataset}\u{0}{column}")) | 1;
        let float = arrow::datatypes::DataType::Float64;
        let value = if arg.get_type(a.input.schema()).ok().as_ref() == Some(&float) {
            arg.clone()
        } else {
            datafusion::logical_expr::cast(arg.clone(), float)
        };
        let aggregate_only = scope.protected.get(&dataset).is_some_and(|p| p.contains(&column));
        Some((k, value, tag, aggregate_only))
    });
    candidates
        .min_by_key(|(_, _, _, aggregate_only)| !aggregate_only)
        .map(|(k, value, tag, _)| (k, value, tag))
}

/// The hidden sketch column: the group's entities, each with its
/// contribution to the measure [`sketch_measure`] picks.
fn sketch_of(
    a: &Aggregate,
    hidden: &[(usize, String)],
    keep: &Keep,
    scope: &QueryScope,
    per_row: bool,
    entity: Expr,
) -> Expr {
    match sketch_measure(a, hidden, scope) {
        Some((_, value, tag)) => contrib::entities_udaf(keep.min(), per_row, tag).call(vec![entity, value]),
        None => contrib::entities_udaf(keep.min(), per_row, 0).call(vec![entity]),
    }
    .alias(SKETCH)
}

/// The argument of hidden measure `j` of `a`.
fn hidden_arg(a: &Aggregate, j: usize) -> Option<&Expr> {
    match a.aggr_expr.get(j).map(unalias) {
        Some(Expr::AggregateFunction(f)) => f.params.args.first(),
        _ => None,
    }
}

/// The rewritten aggregation: `core` is the small-group filter right over an
/// aggregation that also computes the hidden columns; `columns` gives each
/// column of the job's aggregation over `core` (a plain column, or a fused
/// value), and `tail` the hidden columns and the group size, under their names.
pub(super) struct Rewritten {
    pub(super) core: LogicalPlan,
    pub(super) columns: Vec<Expr>,
    pub(super) tail: Vec<Expr>,
}

/// `e` under `name`, unaliased where it already bears it.
pub(super) fn named(e: Expr, name: &str) -> Expr {
    match &e {
        Expr::Column(c) if c.relation.is_none() && c.name == name => e,
        _ => e.alias(name),
    }
}

/// A DataFusion error while building the rewritten plan: the host's fault, not the job's.
pub(super) fn rewrite_error(e: datafusion::error::DataFusionError) -> QueryError {
    QueryError::Internal(format!("suppression rewrite: {e}"))
}

/// The aggregation over protected data, rewritten: counts the distinct
/// entities per group (or its rows, where they are entities), computes each
/// hidden measure's contributions, and drops the small groups.
pub(super) fn rewrite_aggregate(
    a: &Aggregate,
    hidden: &[(usize, String)],
    keep: &Keep,
    scope: &QueryScope,
) -> Result<Rewritten, QueryError> {
    // One row per entity: count rows and take each row as its entity's
    // contribution; no entity column, no per-entity state.
    let per_row = one_row_per_entity(&a.input, scope);
    // Every aggregation keeps a sketch of each group's entities, for the
    // gate's comparison with released cells: the entity column is threaded
    // through even where rows are entities.
    let input = thread_entity(&a.input, scope)?;
    if per_row && let Some(fused) = fused_per_row(a, &input, hidden, keep, scope)? {
        return Ok(fused);
    }
    let entity = || col(format!("\"{ENTITY}\""));
    let mut aggr = a.aggr_expr.clone();
    // Several rows per entity: the sketch's measure (or, with none, the
    // first hidden measure) keeps its per-entity sums once, for both its
    // contributions and the sketch (`measured`); measures of the same
    // argument read the same figures.
    let shared = if per_row {
        None
    } else {
        match sketch_measure(a, hidden, scope) {
            Some((k, _, tag)) => hidden.get(k).map(|(j, _)| (*j, tag)),
            None => hidden.first().map(|(j, _)| (*j, 0)),
        }
        .and_then(|(j, tag)| Some((hidden_arg(a, j)?.clone(), tag)))
    };
    let field_of = |source: &str, name: &str| {
        datafusion::functions::core::expr_fn::get_field(Expr::Column(Column::from_name(source)), name)
    };
    let field = |name: &str| field_of(MEASURED, name);
    if let Some((arg, tag)) = &shared {
        aggr.push(
            measured::udaf(keep.min(), *tag)
                .call(vec![arg.clone(), entity()])
                .alias(MEASURED),
        );
    }
    let mut tail: Vec<Expr> = Vec::with_capacity(hidden.len() + 2);
    let mut others: Vec<(Expr, String)> = Vec::new();
    for (j, name) in hidden {
        let Some(arg) = hidden_arg(a, *j) else {
            return Err(QueryError::Internal("suppression rewrite: hidden measure".into()));
        };
        if shared.as_ref().is_some_and(|(s, _)| s == arg) {
            tail.push(field(measured::FIGURES).alias(name));
            continue;
        }
        if per_row {
            aggr.push(row_contrib::udaf().call(vec![arg.clone()]).alias(name));
            tail.push(Expr::Column(Column::from_name(name)));
            continue;
        }
        // Another argument: its own per-person sums, with no sketch (a
        // threshold no group reaches); measures of one argument share them.
        let source = match others.iter().find(|(o, _)| o == arg) {
            Some((_, first)) => first.clone(),
            None => {
                aggr.push(
                    measured::udaf(u64::MAX, 0)
                        .call(vec![arg.clone(), entity()])
                        .alias(name),
                );
                others.push((arg.clone(), name.clone()));
                name.clone()
            }
        };
        tail.push(field_of(&source, measured::FIGURES).alias(name));
    }
    let sketch = if shared.is_some() {
        field(measured::SKETCH)
    } else {
        aggr.push(sketch_of(a, hidden, keep, scope, per_row, entity()));
        Expr::Column(Column::from_name(SKETCH))
    };
    tail.push(named(sketch.clone(), SKETCH));
    // Rows are entities: a count(*) the job asked for is already the group
    // size, and otherwise a count of rows is. Elsewhere the sketch counts.
    let counted = per_row.then(|| a.aggr_expr.iter().position(counts_rows)).flatten();
    if per_row && counted.is_none() {
        let rows = datafusion::functions_aggregate::expr_fn::count(datafusion::logical_expr::lit(1i64));
        aggr.push(rows.alias(GROUP_SIZE));
    }
    let agg = Aggregate::try_new(Arc::new(input), a.group_expr.clone(), aggr).map_err(rewrite_error)?;
    let all = agg.schema.columns();
    let visible = a.group_expr.len() + a.aggr_expr.len();
    let size = match counted {
        None if per_row => Expr::Column(Column::from_name(GROUP_SIZE)),
        None => contrib::sketch_size_udf().call(vec![sketch]),
        Some(i) => Expr::Column(
            all.get(a.group_expr.len() + i)
                .cloned()
                .ok_or_else(|| QueryError::Internal("suppression rewrite: count column".into()))?,
        ),
    };
    tail.push(named(size.clone(), GROUP_SIZE));
    Ok(Rewritten {
        columns: all.into_iter().take(visible).map(Expr::Column).collect(),
        core: keep.over(size, LogicalPlan::Aggregate(agg)).map_err(rewrite_error)?,
        tail,
    })
}

/// The rewritten aggregation with the job's aggregation's columns (under
/// their names) and the tail: no projection where `core` already has them.
pub(super) fn wrap(a: &Aggregate, r: Rewritten) -> Result<LogicalPlan, QueryError> {
    let original = a.schema.columns();
    let mut exprs: Vec<Expr> = Vec::with_capacity(r.columns.len() + r.tail.len());
    for (e, c) in r.columns.into_iter().zip(&original) {
        exprs.push(match &e {
            Expr::Column(have) if have == c => e,
            _ => e.alias_qualified(c.relation.clone(), c.name.clone()),
        });
    }
    exprs.extend(r.tail);
    let identity = exprs.len() == r.core.schema().fields().len()
        && exprs
            .iter()
            .zip(r.core.schema().columns())
            .all(|(e, c)| matches!(e, Expr::Column(have) if *have == c));
    if identity {
        return Ok(r.core);
    }
    Projection::try_new(exprs, Arc::new(r.core))
        .map(LogicalPlan::Projection)
        .map_err(rewrite_error)
}

/// The job's projection right over its aggregation, merged with the rewrite's
/// columns: one projection where there would be two (each plan node costs
/// physical planning time). Each expression keeps the name the job saw.
pub(super) fn merged(p: &Projection, a: &Aggregate, r: Rewritten) -> Result<LogicalPlan, QueryError> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    let by_column: std::collections::HashMap<Column, Expr> = a.schema.columns().into_iter().zip(r.columns).collect();
    let mut exprs = Vec::with_capacity(p.expr.len() + r.tail.len());
    for e in &p.expr {
        let mut missing = false;
        let substituted = e
            .clone()
            .transform(|x| match x {
                Expr::Column(c) => match by_column.get(&c) {
                    Some(v) => Ok(Transformed::yes(v.clone())),
                    None => {
                        missing = true;
                        Ok(Transformed::no(Expr::Column(c)))
                    }
                },
                x => Ok(Transformed::no(x)),
            })
            .map_err(rewrite_error)?
            .data;
        if missing {
            return Err(QueryError::Internal(
                "suppression rewrite: unknown column above the aggregation".into(),
            ));
        }
        let (qualifier, name) = e.qualified_name();
        exprs.push(if substituted.qualified_name() == (qualifier.clone(), name.clone()) {
            substituted
        } else {
            substituted.alias_qualified(qualifier, name)
        });
    }
    exprs.extend(r.tail);
    Projection::try_new(exprs, Arc::new(r.core))
        .map(LogicalPlan::Projection)
        .map_err(rewrite_error)
}

/// The hidden contribution columns and the group size, in the order the host
/// reads them after the job's columns.
pub(super) fn hidden_tail(hidden: &[(usize, String)]) -> impl Iterator<Item = Expr> + '_ {
    hidden
        .iter()
        .map(|(_, name)| name.as_str())
        .chain([SKETCH, GROUP_SIZE])
        .map(|name| Expr::Column(Column::from_name(name)))
}

/// Rewrites the aggregation over protected data to count distinct entities per
/// group, and carries that count to the top of the plan.
/// `keep` is the small-group filter, placed right above the aggregation.
pub(super) fn rewrite(
    plan: &LogicalPlan,
    hidden: &[(usize, String)],
    keep: &Keep,
    scope: &QueryScope,
) -> Result<LogicalPlan, QueryError> {
    let rewrite = |p: &LogicalPlan| rewrite(p, hidden, keep, scope);
    Ok(match plan {
        LogicalPlan::Aggregate(a) => wrap(a, rewrite_aggregate(a, hidden, keep, scope)?)?,
        LogicalPlan::Projection(p) => {
            if let LogicalPlan::Aggregate(a) = p.input.as_ref() {
                return merged(p, a, rewrite_aggregate(a, hidden, keep, scope)?);
            }
            let input = rewrite(&p.input)?;
            let mut exprs = p.expr.clone();
            exprs.extend(hidden_tail(hidden));
            LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(input)).map_err(rewrite_error)?)
        }
        LogicalPlan::Sort(s) => LogicalPlan::Sort(Sort {
            expr: s.expr.clone(),
            input: Arc::new(rewrite(&s.input)?),
            fetch: s.fetch,
        }),
        LogicalPlan::Limit(l) => LogicalPlan::Limit(Limit {
            skip: l.skip.clone(),
            fetch: l.fetch.clone(),
            input: Arc::new(rewrite(&l.input)?),
        }),
        LogicalPlan::Filter(f) => LogicalPlan::Filter(
            Filter::try_new(f.predicate.clone(), Arc::new(rewrite(&f.input)?)).map_err(rewrite_error)?,
        ),
        LogicalPlan::SubqueryAlias(a) => LogicalPlan::SubqueryAlias(
            SubqueryAlias::try_new(Arc::new(rewrite(&a.input)?), a.alias.clone()).map_err(rewrite_error)?,
        ),
        LogicalPlan::Window(w) => {
            // The hidden columns pass through the window; put them back last,
            // where the host reads them, whatever sits above.
            let window = Window::try_new(w.window_expr.clone(), Arc::new(rewrite(&w.input)?)).map_err(rewrite_error)?;
            let hidden_names: Vec<&str> = hidden.iter().map(|(_, name)| name.as_str()).collect();
            let is_hidden =
                |c: &Column| c.name == GROUP_SIZE || c.name == SKETCH || hidden_names.contains(&c.name.as_str());
            let columns = window.schema.columns();
            let mut exprs: Vec<Expr> = columns
                .iter()
                .filter(|c| !is_hidden(c))
                .cloned()
                .map(Expr::Column)
                .collect();
            exprs.extend(hidden_tail(hidden));
            LogicalPlan::Projection(
                Projection::try_new(exprs, Arc::new(LogicalPlan::Window(window))).map_err(rewrite_error)?,
            )
        }
        _ => {
            return Err(refuse(
                "this query shape cannot carry the entity count needed for small-group suppression",
            ));
        }
    })
}

/// Drops the hidden entity column from a plan that has it (it arrives with
/// `SELECT *`, and from the unprotected side of a join); other plans pass as they are.
pub(super) fn without_entity(plan: LogicalPlan) -> Result<LogicalPlan, QueryError> {
    let keep: Vec<Expr> = plan
        .schema()
        .columns()
        .into_iter()
        .filter(|c| c.name != ENTITY)
        .map(Expr::Column)
        .collect();
    if keep.len() == plan.schema().fields().len() {
        return Ok(plan);
    }
    if keep.is_empty() {
        return Err(refuse("internal columns cannot be used"));
    }
    Projection::try_new(keep, Arc::new(plan))
        .map(LogicalPlan::Projection)
        .map_err(|e| QueryError::Internal(format!("hiding the entity column: {e}")))
}
