//! The aggregation rule, checked on the optimized plan of every query under a
//! policy: aggregate-only columns reach a result only as the plain argument
//! of an allowed aggregate; GROUP BY uses no aggregate-only column; and the
//! one aggregation over a protected dataset is rewritten to count the
//! distinct entities behind each group, so that the host can suppress groups
//! below the threshold before the job sees them.
//!
//! Joins are followed column by column: a protected dataset may be joined
//! with unrestricted ones (its entities are the ones counted), and
//! join-key-only columns may only meet each other in a join condition.
//!
//! Window functions may run over the groups of that aggregation (ranks,
//! shares of a total, running sums): they sit above the small-group filter,
//! so they see only the groups the job would see anyway. Over the rows of a
//! protected dataset they are refused.
//!
//! Deny by default: plan shapes this rule does not understand (joins of two
//! protected datasets on anything but their entity columns, unions, windows
//! over rows, nested aggregation) are refused when they touch a protected
//! dataset.

use crate::keep::Keep;
use crate::query::{Guarded, QueryError, QueryGuard, QueryScope};
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, Expr, Filter, Limit, LogicalPlan, Projection, Sort, SubqueryAlias, TableScanBuilder, Window, col,
};
use inland_policies::Label;
use inland_policies::policy::ColumnClass;
use std::sync::Arc;

/// The hidden column of a policy table holding the pseudonymous entity of each row.
pub(crate) const ENTITY: &str = "__inland_entity";
/// The column the rewrite adds: distinct entities behind each group.
pub(crate) const GROUP_SIZE: &str = "__inland_group_entities";

/// Prefix of the hidden contribution columns the rewrite adds for sums and means.
pub(crate) const CONTRIB: &str = "__inland_contrib_";

const RULE: &str = "aggregate-only";
const KEY_RULE: &str = "join-key-only";

/// What the host records about one visible column of an aggregate result.
#[derive(Debug, Clone, PartialEq)]
pub enum CellRole {
    /// A group key.
    Key,
    /// An aggregate value.
    Measure {
        /// The aggregate as planned, e.g. `sum(residents.income)`.
        source: String,
        /// Frequency, magnitude or other.
        kind: inland_gate::MeasureKind,
        /// Which hidden contribution column (in order) holds its contributions.
        contrib: Option<usize>,
    },
    /// Computed from keys or aggregates: the host does not vouch for it.
    Other,
}

/// How the host turns an aggregate result into per-cell facts for the gate.
#[derive(Debug, Clone, PartialEq)]
pub struct CellPlan {
    /// One role per visible column.
    pub columns: Vec<CellRole>,
    /// Hidden contribution columns, just before the group-size column.
    pub contribs: usize,
}

#[derive(Clone, Copy)]
enum Origin {
    Group,
    Aggr(usize),
    Computed,
}

fn kind_of(e: &Expr) -> inland_gate::MeasureKind {
    use inland_gate::MeasureKind;
    match unalias(e) {
        Expr::AggregateFunction(AggregateFunction { func, .. }) => match func.name().to_ascii_lowercase().as_str() {
            "count" => MeasureKind::Frequency,
            "sum" | "avg" | "mean" => MeasureKind::Magnitude,
            _ => MeasureKind::Other,
        },
        _ => MeasureKind::Other,
    }
}

/// The aggregation the rewrite works on, through the shapes it supports.
fn find_aggregate(plan: &LogicalPlan) -> Option<&Aggregate> {
    match plan {
        LogicalPlan::Aggregate(a) => Some(a),
        LogicalPlan::Projection(p) => find_aggregate(&p.input),
        LogicalPlan::Sort(s) => find_aggregate(&s.input),
        LogicalPlan::Limit(l) => find_aggregate(&l.input),
        LogicalPlan::Filter(f) => find_aggregate(&f.input),
        LogicalPlan::SubqueryAlias(a) => find_aggregate(&a.input),
        LogicalPlan::Window(w) => find_aggregate(&w.input),
        _ => None,
    }
}

/// Where each output column of the plan comes from in the aggregation.
fn origins(plan: &LogicalPlan) -> Option<Vec<Origin>> {
    match plan {
        LogicalPlan::Aggregate(a) => {
            let groups = a.group_expr.len();
            if a.group_expr.iter().any(|g| matches!(g, Expr::GroupingSet(_))) {
                return None;
            }
            Some(
                (0..groups)
                    .map(|_| Origin::Group)
                    .chain((0..a.aggr_expr.len()).map(Origin::Aggr))
                    .collect(),
            )
        }
        LogicalPlan::Projection(p) => {
            let input = origins(&p.input)?;
            Some(
                p.expr
                    .iter()
                    .map(|e| match unalias(e) {
                        Expr::Column(c) => p
                            .input
                            .schema()
                            .index_of_column(c)
                            .ok()
                            .and_then(|i| input.get(i).copied())
                            .unwrap_or(Origin::Computed),
                        _ => Origin::Computed,
                    })
                    .collect(),
            )
        }
        LogicalPlan::Sort(s) => origins(&s.input),
        LogicalPlan::Limit(l) => origins(&l.input),
        LogicalPlan::Filter(f) => origins(&f.input),
        LogicalPlan::SubqueryAlias(a) => origins(&a.input),
        // A window passes its input's columns through and computes the rest.
        LogicalPlan::Window(w) => {
            let mut input = origins(&w.input)?;
            input.extend(w.window_expr.iter().map(|_| Origin::Computed));
            Some(input)
        }
        _ => None,
    }
}

/// The cell plan of a query, and the names of the hidden contribution columns.
fn cell_plan(plan: &LogicalPlan) -> (Option<CellPlan>, Vec<(usize, String)>) {
    let Some(agg) = find_aggregate(plan) else {
        return (None, Vec::new());
    };
    let magnitude: Vec<(usize, String)> = agg
        .aggr_expr
        .iter()
        .enumerate()
        .filter(|(_, e)| kind_of(e) == inland_gate::MeasureKind::Magnitude)
        .filter(|(_, e)| matches!(unalias(e), Expr::AggregateFunction(f) if f.params.args.len() == 1))
        .map(|(j, _)| (j, format!("{CONTRIB}{j}")))
        .collect();
    let Some(origins) = origins(plan) else {
        return (None, magnitude);
    };
    let columns = origins
        .iter()
        .map(|o| match o {
            Origin::Group => CellRole::Key,
            Origin::Aggr(j) => CellRole::Measure {
                source: agg
                    .aggr_expr
                    .get(*j)
                    .map(|e| unalias(e).to_string())
                    .unwrap_or_default(),
                kind: agg
                    .aggr_expr
                    .get(*j)
                    .map(kind_of)
                    .unwrap_or(inland_gate::MeasureKind::Other),
                contrib: magnitude.iter().position(|(m, _)| m == j),
            },
            Origin::Computed => CellRole::Other,
        })
        .collect();
    let contribs = magnitude.len();
    (Some(CellPlan { columns, contribs }), magnitude)
}

/// Lineage of one column: does it carry raw aggregate-only values, and what
/// is the most it can reveal?
#[derive(Debug, Clone, Copy)]
struct Lin {
    /// Exactly an aggregate-only source column (possibly renamed).
    direct: bool,
    /// Computed from an aggregate-only value without aggregating it.
    tainted: bool,
    /// The label of the values it carries.
    level: Label,
    /// Exactly a join-key-only source column (possibly renamed).
    key: bool,
    /// Exactly the entity column of a protected dataset (possibly renamed).
    entity: EntityCol,
}

/// Whether a column is a protected dataset's entity column, and in which
/// form the job sees it: equal values of the same form are the same entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntityCol {
    No,
    Plain,
    Pseudonym,
}

impl Default for Lin {
    fn default() -> Self {
        Lin {
            direct: false,
            tainted: false,
            level: Label::Public,
            key: false,
            entity: EntityCol::No,
        }
    }
}

fn class_level(class: Option<ColumnClass>) -> Label {
    match class {
        Some(ColumnClass::DirectIdentifier) => Label::Identifying,
        Some(ColumnClass::Public) => Label::Public,
        _ => Label::RowLevel,
    }
}

impl Lin {
    fn raw(self) -> bool {
        self.direct || self.tainted
    }
}

/// What the analysis found below a node.
struct Facts {
    cols: Vec<Lin>,
    /// Reads a dataset the policy protects.
    protected: bool,
    /// Aggregations over protected data found.
    aggregations: usize,
}

fn refuse(message: impl Into<String>) -> QueryError {
    QueryError::refused(RULE, message)
}

fn refuse_key(column: &str) -> QueryError {
    QueryError::refused(
        KEY_RULE,
        format!(
            "`{column}` is join-key-only: it can be compared with another join-key-only column in a join \
             condition, and never shown, filtered, grouped, sorted or computed on"
        ),
    )
}

/// The lineage of one column of `schema`.
fn lineage(c: &Column, schema: &DFSchema, cols: &[Lin]) -> Result<Lin, QueryError> {
    let i = schema
        .index_of_column(c)
        .map_err(|e| QueryError::Internal(format!("lineage: {e}")))?;
    Ok(cols.get(i).copied().unwrap_or_default())
}

/// The lineage of what `expr` computes from the columns of `schema`. Any use
/// of a join-key-only column here is refused: only [`join_key`] admits one.
fn refs(expr: &Expr, schema: &DFSchema, cols: &[Lin]) -> Result<Lin, QueryError> {
    let mut out = Lin::default();
    for c in expr.column_refs() {
        if c.name == ENTITY || c.name == GROUP_SIZE {
            return Err(refuse("internal columns cannot be used"));
        }
        let l = lineage(c, schema, cols)?;
        if l.key {
            return Err(refuse_key(&c.name));
        }
        out.tainted |= l.raw();
        out.level = out.level.max(l.level);
    }
    Ok(out)
}

fn unalias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unalias(&a.expr),
        other => other,
    }
}

fn analyze(plan: &LogicalPlan, scope: &QueryScope) -> Result<Facts, QueryError> {
    // Subqueries the optimizer could not turn into joins sit inside
    // expressions, out of this walk's reach: over protected data, deny.
    let mut hidden = false;
    let _ = plan.apply_subqueries(|sub| {
        hidden |= reads_protected(sub, scope);
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    if hidden {
        return Err(refuse(
            "this subquery over a protected dataset cannot be checked; write it as a join",
        ));
    }
    match plan {
        LogicalPlan::TableScan(scan) => {
            let table = scan.table_name.table();
            let Some(p) = scope.protected.get(table) else {
                return Ok(Facts {
                    cols: vec![Lin::default(); scan.projected_schema.fields().len()],
                    protected: false,
                    aggregations: 0,
                });
            };
            let cols = scan
                .projected_schema
                .fields()
                .iter()
                .map(|f| {
                    let class = if f.name() == ENTITY {
                        Some(ColumnClass::DirectIdentifier)
                    } else {
                        scope.class(table, f.name())
                    };
                    Lin {
                        direct: p.contains(f.name()),
                        tainted: false,
                        level: class_level(class),
                        key: scope.key_only.get(table).is_some_and(|k| k.contains(f.name())),
                        // Only a protected dataset's entities are counted; a lookup
                        // table's "entity" column says nothing about them.
                        entity: match scope.entities.get(table) {
                            Some((e, pseudonym)) if e == f.name() && !scope.unrestricted.contains(table) => {
                                if *pseudonym {
                                    EntityCol::Pseudonym
                                } else {
                                    EntityCol::Plain
                                }
                            }
                            _ => EntityCol::No,
                        },
                    }
                })
                .collect();
            // Only filters on pass-through, non-aggregate-only columns are pushed
            // into a policy table (see PolicyTable); check again, deny by default.
            for f in &scan.filters {
                for c in f.column_refs() {
                    if p.contains(&c.name) || c.name == ENTITY {
                        return Err(QueryError::Internal(
                            "a filter on a protected column was pushed into a policy table".into(),
                        ));
                    }
                }
            }
            Ok(Facts {
                cols,
                protected: !scope.unrestricted.contains(table),
                aggregations: 0,
            })
        }
        LogicalPlan::Projection(p) => {
            let input = analyze(&p.input, scope)?;
            let mut cols = Vec::new();
            for e in &p.expr {
                let l = match unalias(e) {
                    Expr::Column(c) => lineage(c, p.input.schema(), &input.cols)?,
                    other => refs(other, p.input.schema(), &input.cols)?,
                };
                cols.push(l);
            }
            Ok(Facts { cols, ..input })
        }
        LogicalPlan::Filter(f) => {
            let input = analyze(&f.input, scope)?;
            if refs(&f.predicate, f.input.schema(), &input.cols)?.raw() {
                return Err(refuse(
                    "aggregate-only columns cannot be used in WHERE or HAVING on raw values",
                ));
            }
            Ok(input)
        }
        LogicalPlan::SubqueryAlias(a) => analyze(&a.input, scope),
        LogicalPlan::Sort(s) => {
            let input = analyze(&s.input, scope)?;
            for e in &s.expr {
                if refs(&e.expr, s.input.schema(), &input.cols)?.raw() {
                    return Err(refuse("aggregate-only columns cannot be used in ORDER BY"));
                }
            }
            Ok(input)
        }
        LogicalPlan::Limit(l) => analyze(&l.input, scope),
        LogicalPlan::Aggregate(a) => {
            let input = analyze(&a.input, scope)?;
            let mut cols = Vec::new();
            for g in &a.group_expr {
                let l = refs(g, a.input.schema(), &input.cols)?;
                if l.raw() {
                    return Err(refuse("GROUP BY cannot use an aggregate-only column"));
                }
                // A group key stays identifying; otherwise it is an aggregate's key.
                let level = if l.level == Label::Identifying {
                    l.level
                } else {
                    l.level.min(Label::Aggregate)
                };
                cols.push(Lin {
                    level,
                    ..Lin::default()
                });
            }
            for e in &a.aggr_expr {
                check_aggregate(unalias(e), &a.input, &input.cols, scope)?;
                let l = refs(e, a.input.schema(), &input.cols)?;
                let level = if input.protected {
                    Label::Aggregate.max(l.level.min(Label::Aggregate))
                } else {
                    l.level
                };
                cols.push(Lin {
                    level,
                    ..Lin::default()
                });
            }
            let aggregations = input.aggregations + usize::from(input.protected);
            Ok(Facts {
                cols,
                protected: input.protected,
                aggregations,
            })
        }
        LogicalPlan::Join(j) => analyze_join(j, scope),
        LogicalPlan::Window(w) => {
            let input = analyze(&w.input, scope)?;
            if input.protected && input.aggregations == 0 {
                // A window over rows is an aggregate no small-group rule sees.
                return Err(refuse(
                    "window functions over the rows of a protected dataset are not allowed; \
                     aggregate first (GROUP BY) and apply the window to the groups",
                ));
            }
            let mut cols = input.cols.clone();
            for e in &w.window_expr {
                let l = refs(e, w.input.schema(), &input.cols)?;
                cols.push(Lin {
                    tainted: l.raw(),
                    level: l.level,
                    ..Lin::default()
                });
            }
            Ok(Facts { cols, ..input })
        }
        LogicalPlan::EmptyRelation(_) | LogicalPlan::Values(_) => Ok(Facts {
            cols: vec![Lin::default(); plan.schema().fields().len()],
            protected: false,
            aggregations: 0,
        }),
        other => {
            let mut protected = false;
            let mut level = Label::Public;
            for i in other.inputs() {
                let f = analyze(i, scope)?;
                protected |= f.protected;
                for (l, field) in f.cols.iter().zip(i.schema().fields()) {
                    if l.key {
                        return Err(refuse_key(field.name()));
                    }
                    level = level.max(l.level);
                }
            }
            if protected {
                return Err(refuse(format!(
                    "{} over a protected dataset is not supported yet; aggregate each dataset on its own",
                    other
                        .display()
                        .to_string()
                        .split(':')
                        .next()
                        .unwrap_or("this operation")
                )));
            }
            // Over unrestricted datasets: every output column carries the most
            // revealing level of any input column (labels only go up).
            Ok(Facts {
                cols: vec![
                    Lin {
                        level,
                        ..Lin::default()
                    };
                    other.schema().fields().len()
                ],
                protected: false,
                aggregations: 0,
            })
        }
    }
}

/// The lineage of one side of a join's equality: a join-key-only column may
/// stand there alone (perhaps cast for type coercion), nothing computed from it.
fn join_key(expr: &Expr, schema: &DFSchema, cols: &[Lin]) -> Result<Lin, QueryError> {
    let mut e = unalias(expr);
    while let Expr::Cast(c) = e {
        e = unalias(&c.expr);
    }
    match e {
        Expr::Column(c) if c.name != ENTITY && c.name != GROUP_SIZE => lineage(c, schema, cols),
        other => refs(other, schema, cols),
    }
}

/// Joins: between datasets the policy leaves unrestricted; between one
/// protected dataset and unrestricted ones (the entities counted are the
/// protected side's); and between protected datasets on their entity
/// columns, an inner join, where every row's two entities are one.
/// Join-key-only columns may be joined only with each other, so a job
/// cannot test guesses of an identifier against them.
fn analyze_join(j: &datafusion::logical_expr::Join, scope: &QueryScope) -> Result<Facts, QueryError> {
    use datafusion::common::JoinType;
    let left = analyze(&j.left, scope)?;
    let right = analyze(&j.right, scope)?;
    let mut same_entity = false;
    for (l, r) in &j.on {
        let (ll, rl) = (
            join_key(l, j.left.schema(), &left.cols)?,
            join_key(r, j.right.schema(), &right.cols)?,
        );
        // Plain columns only: a cast can make distinct values equal.
        let plain = |e: &Expr| matches!(unalias(e), Expr::Column(_));
        same_entity |= ll.entity != EntityCol::No && ll.entity == rl.entity && plain(l) && plain(r);
        if ll.raw() || rl.raw() {
            return Err(refuse("aggregate-only columns cannot be join keys"));
        }
        if ll.key != rl.key {
            let named = if ll.key { l } else { r };
            return Err(QueryError::refused(
                KEY_RULE,
                format!("`{named}` is join-key-only: it can be joined only with another join-key-only column"),
            ));
        }
    }
    // Two protected datasets: only matched rows whose two entities are one
    // (equal entity columns), so that the entities counted on one side are
    // the entities behind every value of the other.
    if left.protected && right.protected && !(same_entity && j.join_type == JoinType::Inner) {
        return Err(refuse(
            "two protected datasets can only be joined by an inner join on both datasets' entity columns \
             (the same person or enterprise on both sides); join other datasets only with unrestricted ones",
        ));
    }
    let both: Vec<Lin> = left.cols.iter().chain(&right.cols).copied().collect();
    if let Some(f) = &j.filter {
        let schema = j.left.schema().join(j.right.schema()).map_err(QueryError::from)?;
        if refs(f, &schema, &both)?.raw() {
            return Err(refuse("aggregate-only columns cannot be used in a join condition"));
        }
    }
    let marked = |mut cols: Vec<Lin>| {
        cols.push(Lin::default());
        cols
    };
    let cols = match j.join_type {
        JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => both,
        JoinType::LeftSemi | JoinType::LeftAnti => left.cols,
        JoinType::RightSemi | JoinType::RightAnti => right.cols,
        JoinType::LeftMark => marked(left.cols),
        JoinType::RightMark => marked(right.cols),
    };
    if cols.len() != j.schema.fields().len() {
        return Err(QueryError::Internal(format!(
            "lineage: a {} join with an unexpected schema",
            j.join_type
        )));
    }
    Ok(Facts {
        cols,
        protected: left.protected || right.protected,
        aggregations: left.aggregations + right.aggregations,
    })
}

fn check_aggregate(e: &Expr, input: &LogicalPlan, cols: &[Lin], scope: &QueryScope) -> Result<(), QueryError> {
    let Expr::AggregateFunction(AggregateFunction { func, params }) = e else {
        return if refs(e, input.schema(), cols)?.raw() {
            Err(refuse("aggregate-only columns must be aggregated"))
        } else {
            Ok(())
        };
    };
    let mut touches = false;
    for arg in &params.args {
        let l = refs(arg, input.schema(), cols)?;
        if l.raw() {
            touches = true;
            let plain = matches!(unalias(arg), Expr::Column(_))
                || matches!(unalias(arg), Expr::Cast(c) if matches!(*c.expr, Expr::Column(_)));
            if !plain {
                return Err(refuse(format!(
                    "the argument of {}() must be an aggregate-only column itself, not an expression of one",
                    func.name()
                )));
            }
        }
    }
    if !touches {
        return Ok(());
    }
    let name = func.name().to_ascii_lowercase();
    let canonical = match name.as_str() {
        "count" if params.distinct => "count_distinct",
        "var" | "var_samp" => "variance",
        "stddev_samp" => "stddev",
        "var_pop" => "variance_pop",
        "mean" => "avg",
        other => other,
    };
    if !scope.allowed_aggregates.iter().any(|a| a == canonical) {
        return Err(refuse(format!(
            "{name}() is not allowed on aggregate-only columns (allowed: {})",
            scope.allowed_aggregates.join(", ")
        )));
    }
    if params.filter.is_some() || !params.order_by.is_empty() {
        return Err(refuse(format!(
            "{name}() on an aggregate-only column cannot have FILTER or ORDER BY"
        )));
    }
    Ok(())
}

/// Adds the entity column to every node from the scan up to (not including) the aggregate.
fn thread_entity(plan: &LogicalPlan, scope: &QueryScope) -> Result<LogicalPlan, QueryError> {
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
fn counts_rows(e: &Expr) -> bool {
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
fn one_row_per_entity(plan: &LogicalPlan, scope: &QueryScope) -> bool {
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
fn reads_protected(plan: &LogicalPlan, scope: &QueryScope) -> bool {
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
fn fusable(e: &Expr, input: &DFSchema) -> Option<crate::row_contrib::Derived> {
    use datafusion::logical_expr::ExprSchemable;
    let Expr::AggregateFunction(AggregateFunction { func, params }) = unalias(e) else {
        return None;
    };
    let kind = match func.name() {
        "avg" => crate::row_contrib::Derived::Mean,
        "sum" => crate::row_contrib::Derived::Sum,
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
fn fused_per_row(a: &Aggregate, hidden: &[(usize, String)], keep: &Keep) -> Result<Option<Rewritten>, QueryError> {
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
                aggr.push(crate::row_contrib::udaf().call(vec![arg.clone()]).alias(name));
            }
        }
    }
    let Some(first) = computed.first() else {
        return Err(QueryError::Internal("suppression rewrite: no contributions".into()));
    };
    let agg = Aggregate::try_new(a.input.clone(), a.group_expr.clone(), aggr).map_err(rewrite_error)?;
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
    tail.push(size.clone().alias(GROUP_SIZE));
    Ok(Some(Rewritten {
        core: keep.over(size, LogicalPlan::Aggregate(agg)).map_err(rewrite_error)?,
        columns: columns_out,
        tail,
    }))
}

/// The rewritten aggregation: `core` is the small-group filter right over an
/// aggregation that also computes the hidden columns; `columns` gives each
/// column of the job's aggregation over `core` (a plain column, or a fused
/// value), and `tail` the hidden columns and the group size, under their names.
struct Rewritten {
    core: LogicalPlan,
    columns: Vec<Expr>,
    tail: Vec<Expr>,
}

/// `e` under `name`, unaliased where it already bears it.
fn named(e: Expr, name: &str) -> Expr {
    match &e {
        Expr::Column(c) if c.relation.is_none() && c.name == name => e,
        _ => e.alias(name),
    }
}

/// A DataFusion error while building the rewritten plan: the host's fault, not the job's.
fn rewrite_error(e: datafusion::error::DataFusionError) -> QueryError {
    QueryError::Internal(format!("suppression rewrite: {e}"))
}

/// The aggregation over protected data, rewritten: counts the distinct
/// entities per group (or its rows, where they are entities), computes each
/// hidden measure's contributions, and drops the small groups.
fn rewrite_aggregate(
    a: &Aggregate,
    hidden: &[(usize, String)],
    keep: &Keep,
    scope: &QueryScope,
) -> Result<Rewritten, QueryError> {
    // One row per entity: count rows and take each row as its entity's
    // contribution; no entity column, no per-entity state.
    let per_row = one_row_per_entity(&a.input, scope);
    if per_row && let Some(fused) = fused_per_row(a, hidden, keep)? {
        return Ok(fused);
    }
    let input = if per_row {
        a.input.as_ref().clone()
    } else {
        thread_entity(&a.input, scope)?
    };
    let entity = || col(format!("\"{ENTITY}\""));
    let mut aggr = a.aggr_expr.clone();
    for (j, name) in hidden {
        if let Some(Expr::AggregateFunction(f)) = a.aggr_expr.get(*j).map(unalias)
            && let Some(arg) = f.params.args.first()
        {
            let contributions = if per_row {
                crate::row_contrib::udaf().call(vec![arg.clone()])
            } else {
                crate::contrib::udaf().call(vec![arg.clone(), entity()])
            };
            aggr.push(contributions.alias(name));
        }
    }
    // Rows are entities: a count(*) the job asked for is already the group size.
    let counted = per_row.then(|| a.aggr_expr.iter().position(counts_rows)).flatten();
    if counted.is_none() {
        let size = if per_row {
            datafusion::functions_aggregate::expr_fn::count(datafusion::logical_expr::lit(1i64))
        } else {
            crate::contrib::entities_udaf().call(vec![entity()])
        };
        aggr.push(size.alias(GROUP_SIZE));
    }
    let agg = Aggregate::try_new(Arc::new(input), a.group_expr.clone(), aggr).map_err(rewrite_error)?;
    let all = agg.schema.columns();
    let visible = a.group_expr.len() + a.aggr_expr.len();
    let size = match counted {
        None => Column::from_name(GROUP_SIZE),
        Some(i) => all
            .get(a.group_expr.len() + i)
            .cloned()
            .ok_or_else(|| QueryError::Internal("suppression rewrite: count column".into()))?,
    };
    let mut tail: Vec<Expr> = hidden
        .iter()
        .map(|(_, name)| Expr::Column(Column::from_name(name)))
        .collect();
    tail.push(named(Expr::Column(size.clone()), GROUP_SIZE));
    Ok(Rewritten {
        columns: all.into_iter().take(visible).map(Expr::Column).collect(),
        core: keep
            .over(Expr::Column(size), LogicalPlan::Aggregate(agg))
            .map_err(rewrite_error)?,
        tail,
    })
}

/// The rewritten aggregation with the job's aggregation's columns (under
/// their names) and the tail: no projection where `core` already has them.
fn wrap(a: &Aggregate, r: Rewritten) -> Result<LogicalPlan, QueryError> {
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
fn merged(p: &Projection, a: &Aggregate, r: Rewritten) -> Result<LogicalPlan, QueryError> {
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
fn hidden_tail(hidden: &[(usize, String)]) -> impl Iterator<Item = Expr> + '_ {
    hidden
        .iter()
        .map(|(_, name)| name.as_str())
        .chain([GROUP_SIZE])
        .map(|name| Expr::Column(Column::from_name(name)))
}

/// Rewrites the aggregation over protected data to count distinct entities per
/// group, and carries that count to the top of the plan.
/// `keep` is the small-group filter, placed right above the aggregation.
fn rewrite(
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
            let is_hidden = |c: &Column| c.name == GROUP_SIZE || hidden_names.contains(&c.name.as_str());
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

/// The label of a result and why: the most revealing column it returns.
fn root_label(plan: &LogicalPlan, facts: &Facts) -> (Label, String) {
    let schema = plan.schema();
    let mut best: Option<(Label, String)> = None;
    for (i, l) in facts.cols.iter().enumerate() {
        let name = schema.field(i).name();
        if name == ENTITY {
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| l.level > *b) {
            best = Some((l.level, name.clone()));
        }
    }
    match best {
        Some((label, column)) => {
            let why = match label {
                Label::Identifying => "carries a direct identifier (masked or not)",
                Label::RowLevel => "carries row-level values of a protected column",
                Label::Aggregate => "is an aggregate over groups the host checked",
                Label::Public => "holds only public data",
            };
            (label, format!("{label}: column `{column}` {why}"))
        }
        None => (Label::Public, "public: no columns".into()),
    }
}

/// Drops the hidden entity column from a plan that has it (it arrives with
/// `SELECT *`, and from the unprotected side of a join); other plans pass as they are.
fn without_entity(plan: LogicalPlan) -> Result<LogicalPlan, QueryError> {
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

/// The aggregation rule as a query guard.
pub struct AggregateGuard;

impl QueryGuard for AggregateGuard {
    fn name(&self) -> &'static str {
        RULE
    }

    fn check(&self, plan: LogicalPlan, scope: &QueryScope) -> Result<Guarded, QueryError> {
        if scope.protected.is_empty() {
            // Without a policy nothing is known about the columns: whatever reads a dataset is row-level.
            let mut reads = false;
            let _ = plan.apply_with_subqueries(|n| {
                reads |= matches!(n, LogicalPlan::TableScan(_));
                Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
            });
            let label = if reads { Label::RowLevel } else { Label::Public };
            let reason = format!("{label}: no policy in force");
            return Ok(Guarded::labelled(plan, (label, reason)));
        }
        let facts = analyze(&plan, scope)?;
        if let Some((_, field)) = facts.cols.iter().zip(plan.schema().fields()).find(|(l, _)| l.key) {
            return Err(refuse_key(field.name()));
        }
        let mut label = root_label(&plan, &facts);
        if facts.protected && facts.aggregations == 0 && label.0 < Label::RowLevel {
            // Which rows came back says something about a protected dataset's rows.
            label = (
                Label::RowLevel,
                "row-level: the rows returned depend on rows of a protected dataset".into(),
            );
        }
        if facts.cols.iter().any(|l| l.raw()) {
            return Err(refuse(format!(
                "aggregate-only columns reach a result only through {}",
                scope.allowed_aggregates.join(", ")
            )));
        }
        match facts.aggregations {
            0 => Ok(Guarded::labelled(without_entity(plan)?, label)),
            1 => {
                let (cells, hidden) = cell_plan(&plan);
                let (keep, removed) = Keep::new(scope.min_group_size);
                Ok(Guarded {
                    suppress_below: Some(scope.min_group_size),
                    suppressed: Some(removed),
                    cells,
                    ..Guarded::labelled(rewrite(&plan, &hidden, &keep, scope)?, label)
                })
            }
            _ => Err(refuse(
                "only one level of aggregation over a protected dataset is supported",
            )),
        }
    }
}
