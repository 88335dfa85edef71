//! The `dp` privacy mode's rule: a query over protected data is one
//! aggregation the host can bound (count, sum and avg of a column with
//! `dp_bounds`, count of distinct values), with only post-processing above
//! it. The aggregation is replaced by a noisy release ([`NoisyNode`]) over
//! exact figures computed with each entity's rows capped and each summed
//! value clamped, so that what one entity can move is known before the query
//! runs, and with it the noise and the cost.

use super::lineage::unalias;
use super::rewrite::{one_row_per_entity, reads_protected, rewrite_error, thread_entity};
use super::source::{source, strip};
use crate::dp_release::{Figure, KEY_DELTA, Keys, NoisyNode, Out, Release};
use crate::guard::{NoisyFacts, QueryError, QueryScope};
use crate::hidden::ENTITY;
use arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, JoinType};
use datafusion::functions::expr_fn::round;
use datafusion::functions_aggregate::expr_fn::{count, count_distinct, sum};
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::ExprSchemable;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, Cast, Expr, ExprFunctionExt, Extension, LogicalPlan, LogicalPlanBuilder, SortExpr, cast, lit, when,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The rule's name in refusals.
pub(crate) const RULE: &str = "dp";

/// The most one entity may move a sum by (2^52: exact in f64 and i64).
const MAX_SENSITIVITY: f64 = 4_503_599_627_370_496.0;

/// The most groups a release by published values may list.
const MAX_PUBLISHED_GROUPS: usize = 10_000;

fn refuse(message: impl Into<String>) -> QueryError {
    QueryError::refused(RULE, message)
}

/// What the rule decided for one query.
pub(crate) struct DpPlan {
    /// The plan, its aggregation replaced by the noisy release.
    pub(crate) plan: LogicalPlan,
    /// ρ the query costs.
    pub(crate) rho: f64,
    /// The protected datasets it reads (charged to their budgets).
    pub(crate) datasets: Vec<String>,
    /// The δ its choice of groups adds (0 with published keys).
    pub(crate) delta: f64,
    /// Where the release records the values it gave.
    pub(crate) facts: NoisyFacts,
}

/// Checks a plan over protected data in the `dp` mode and puts the noisy release in.
pub(crate) fn plan(plan: &LogicalPlan, scope: &QueryScope) -> Result<DpPlan, QueryError> {
    let Some(dp) = &scope.dp else {
        return Err(QueryError::Internal("the dp rule ran outside the dp mode".into()));
    };
    let facts = NoisyFacts::default();
    let (rebuilt, datasets, delta) = replace(plan, scope, dp.rho_per_query, &dp.row_key, &facts)?;
    Ok(DpPlan {
        plan: rebuilt,
        rho: dp.rho_per_query,
        datasets,
        delta,
        facts,
    })
}

/// Walks down from the root to the aggregation over protected data; every
/// node above it has one input and reads nothing else.
fn replace(
    node: &LogicalPlan,
    scope: &QueryScope,
    rho: f64,
    row_key: &str,
    facts: &NoisyFacts,
) -> Result<(LogicalPlan, Vec<String>, f64), QueryError> {
    if let LogicalPlan::Aggregate(a) = node
        && reads_protected(&a.input, scope)
    {
        return noisy(a, scope, rho, row_key, facts);
    }
    let inputs = node.inputs();
    let [input] = inputs.as_slice() else {
        return Err(refuse(
            "in the dp mode a query over protected data is one aggregation with only reshaping of its \
             result above it (no joins, unions or subqueries over its result)",
        ));
    };
    if node.expressions().iter().any(has_subquery) {
        return Err(refuse(
            "in the dp mode nothing above the aggregation may run a subquery",
        ));
    }
    if matches!(node, LogicalPlan::TableScan(_) | LogicalPlan::Extension(_)) || !reads_protected(input, scope) {
        return Err(refuse(
            "in the dp mode protected datasets are read only through count, sum, avg or count(DISTINCT …), \
             which the host releases with noise",
        ));
    }
    let (child, datasets, delta) = replace(input, scope, rho, row_key, facts)?;
    let rebuilt = node
        .with_new_exprs(node.expressions(), vec![child])
        .map_err(rewrite_error)?;
    Ok((rebuilt, datasets, delta))
}

fn has_subquery(e: &Expr) -> bool {
    e.exists(|e| {
        Ok(matches!(
            e,
            Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_)
        ))
    })
    .unwrap_or(true)
}

/// The input of the aggregation: row-level nodes only, nothing that ranks,
/// limits or aggregates rows (each row must be one entity's).
fn check_input(input: &LogicalPlan) -> Result<(), QueryError> {
    let mut problem: Option<&'static str> = None;
    input
        .apply_with_subqueries(|n| {
            problem = match n {
                LogicalPlan::Aggregate(_) | LogicalPlan::Distinct(_) => {
                    Some("an aggregation below the released one (its result would carry many entities per row)")
                }
                LogicalPlan::Window(_) => Some("a window function over protected rows"),
                LogicalPlan::Limit(_) => {
                    Some("LIMIT or OFFSET below the aggregation (which rows count would depend on other rows)")
                }
                LogicalPlan::Union(_) | LogicalPlan::RecursiveQuery(_) => Some("a union below the aggregation"),
                LogicalPlan::Extension(_) | LogicalPlan::Subquery(_) => Some("a subquery below the aggregation"),
                LogicalPlan::Join(j) if matches!(j.join_type, JoinType::LeftMark | JoinType::RightMark) => {
                    Some("a subquery below the aggregation")
                }
                _ if n.expressions().iter().any(has_subquery) => Some("a subquery below the aggregation"),
                _ => None,
            };
            Ok(if problem.is_some() {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })
        .map_err(QueryError::from)?;
    if let Some(p) = problem {
        return Err(refuse(format!("in the dp mode the host cannot bound {p}")));
    }
    // Every expression evaluated over protected rows must be total: an
    // error raised by one row (a division by zero, a failing cast) would
    // tell the job, exactly and without noise, that such a row exists.
    let mut partial: Option<String> = None;
    input
        .apply(|n| {
            let schema = expression_schema(n);
            for e in n.expressions() {
                if let Err(what) = total(&e, schema.as_ref()) {
                    partial = Some(what);
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .map_err(QueryError::from)?;
    match partial {
        Some(what) => Err(partial_refusal(&what)),
        None => Ok(()),
    }
}

fn partial_refusal(what: &str) -> QueryError {
    refuse(format!(
        "in the dp mode expressions over protected rows must never fail, and {what} can (an error from one \
         row would reveal that the row exists): use comparisons, CASE, IN, LIKE, IS NULL, TRY_CAST and \
         lower/upper/trim/coalesce/length"
    ))
}

/// The schema a node's expressions are evaluated over, when it can be named.
fn expression_schema(n: &LogicalPlan) -> Option<DFSchema> {
    match n {
        LogicalPlan::Join(j) => j.left.schema().join(j.right.schema()).ok(),
        LogicalPlan::TableScan(t) => DFSchema::try_from_qualified_schema(t.table_name.clone(), &t.source.schema()).ok(),
        _ => n.inputs().first().map(|i| i.schema().as_ref().clone()),
    }
}

/// Scalar functions that return a value for every input, and one no larger
/// than a small multiple of it (concat could double a string per nesting
/// until memory runs out, which would be an error only some rows cause).
const TOTAL_FUNCTIONS: [&str; 14] = [
    "lower",
    "upper",
    "btrim",
    "trim",
    "ltrim",
    "rtrim",
    "coalesce",
    "nullif",
    "nvl",
    "character_length",
    "char_length",
    "length",
    "starts_with",
    "ends_with",
];

/// Whether `e` evaluates without error on every row; if not, what can fail.
fn total(e: &Expr, schema: Option<&DFSchema>) -> Result<(), String> {
    use datafusion::logical_expr::Operator;
    let all = |es: &[&Expr]| es.iter().try_for_each(|x| total(x, schema));
    match e {
        Expr::Column(_) | Expr::Literal(..) => Ok(()),
        Expr::Alias(a) => total(&a.expr, schema),
        Expr::Not(x)
        | Expr::IsNull(x)
        | Expr::IsNotNull(x)
        | Expr::IsTrue(x)
        | Expr::IsFalse(x)
        | Expr::IsUnknown(x)
        | Expr::IsNotTrue(x)
        | Expr::IsNotFalse(x)
        | Expr::IsNotUnknown(x)
        | Expr::TryCast(datafusion::logical_expr::TryCast { expr: x, .. }) => total(x, schema),
        Expr::Between(b) => all(&[&b.expr, &b.low, &b.high]),
        Expr::InList(l) => {
            total(&l.expr, schema)?;
            l.list.iter().try_for_each(|x| total(x, schema))
        }
        Expr::Like(l) => {
            // Short and plain: a long pattern's regex can fail to build, and
            // it is built only when some row reaches it.
            let literal = matches!(l.pattern.as_ref(), Expr::Literal(v, _)
                if { let p = v.to_string(); !p.contains('\\') && p.chars().count() <= MAX_LIKE_PATTERN });
            if l.escape_char.is_some() || !literal {
                return Err(format!(
                    "a LIKE pattern that is not a plain literal of at most {MAX_LIKE_PATTERN} characters"
                ));
            }
            total(&l.expr, schema)
        }
        Expr::BinaryExpr(b) => match b.op {
            Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::And
            | Operator::Or
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom => all(&[&b.left, &b.right]),
            op => Err(format!("the operator `{op}` (overflow, division by zero)")),
        },
        Expr::Case(c) => {
            if let Some(x) = &c.expr {
                total(x, schema)?;
            }
            for (w, t) in &c.when_then_expr {
                all(&[w, t])?;
            }
            match &c.else_expr {
                Some(x) => total(x, schema),
                None => Ok(()),
            }
        }
        Expr::Cast(Cast { expr, field }) => {
            let from = schema.and_then(|s| expr.get_type(s).ok());
            if !cast_total(from.as_ref(), field.data_type()) {
                return Err(format!("a cast to {}", field.data_type()));
            }
            total(expr, schema)
        }
        Expr::ScalarFunction(f) => {
            let name = f.name().to_ascii_lowercase();
            if !TOTAL_FUNCTIONS.contains(&name.as_str()) {
                return Err(format!("{name}()"));
            }
            f.args.iter().try_for_each(|x| total(x, schema))
        }
        other => Err(format!("`{}`", other.schema_name())),
    }
}

/// The longest LIKE pattern allowed over protected rows in the dp mode.
const MAX_LIKE_PATTERN: usize = 256;

/// Casts that cannot fail: numbers, booleans and text to text (bytes may
/// not be UTF-8, dates may be out of range), a type to itself, or a numeric
/// widening to Int64 or Float64.
fn cast_total(from: Option<&DataType>, to: &DataType) -> bool {
    let Some(from) = from else { return false };
    if matches!(to, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
        return from.is_numeric()
            || matches!(
                from,
                DataType::Boolean | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            );
    }
    from == to
        || match to {
            DataType::Int64 => matches!(
                from,
                DataType::Int8
                    | DataType::Int16
                    | DataType::Int32
                    | DataType::UInt8
                    | DataType::UInt16
                    | DataType::UInt32
            ),
            DataType::Float64 => from.is_integer() || from.is_floating() || matches!(from, DataType::Decimal128(..)),
            _ => false,
        }
}

/// The protected datasets a plan scans.
fn protected_scans(plan: &LogicalPlan, scope: &QueryScope) -> Vec<String> {
    let mut out = Vec::new();
    let _ = plan.apply_with_subqueries(|n| {
        if let LogicalPlan::TableScan(t) = n
            && !scope.unrestricted.contains(t.table_name.table())
        {
            out.push(t.table_name.table().to_string());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out.sort();
    out.dedup();
    out
}

/// The aggregation replaced by a noisy release of bounded figures.
fn noisy(
    a: &Aggregate,
    scope: &QueryScope,
    rho: f64,
    row_key: &str,
    facts: &NoisyFacts,
) -> Result<(LogicalPlan, Vec<String>, f64), QueryError> {
    check_input(&a.input)?;
    let datasets = protected_scans(&a.input, scope);
    // How many rows one entity may bring: proven one, or the policy's cap.
    let one_row = one_row_per_entity(&a.input, scope);
    let mut cap = 1u32;
    if !one_row {
        for d in &datasets {
            let m = scope
                .max_rows_per_entity
                .get(d)
                .copied()
                .or_else(|| scope.unique_entities.contains(d).then_some(1));
            let Some(m) = m else {
                return Err(refuse(format!(
                    "dataset `{d}` sets no max_rows_per_entity in the policy, so the host cannot bound what one \
                     entity adds to an aggregate"
                )));
            };
            cap = cap.max(m);
        }
    }
    // The figures each aggregate needs, and how each output column is made of them.
    let mut figures = vec![Figure::Rows];
    let mut noised = vec![false];
    let mut args: Vec<Expr> = Vec::new();
    let mut outputs = Vec::new();
    let mut figure = |f: Figure, arg: Option<Expr>, figures: &mut Vec<Figure>, noised: &mut Vec<bool>| -> usize {
        match arg {
            None => {
                noised[0] = true;
                0
            }
            Some(e) => {
                args.push(e);
                figures.push(f);
                noised.push(true);
                figures.len() - 1
            }
        }
    };
    let input_schema = a.input.schema().as_ref().clone();
    for g in &a.group_expr {
        total(g, Some(&input_schema)).map_err(|what| partial_refusal(&what))?;
    }
    for e in &a.aggr_expr {
        let Expr::AggregateFunction(AggregateFunction { func, params }) = unalias(e) else {
            return Err(refuse("in the dp mode every value of the aggregation is an aggregate"));
        };
        let name = func.name().to_ascii_lowercase();
        for arg in &params.args {
            total(arg, Some(&input_schema)).map_err(|what| partial_refusal(&what))?;
        }
        if params.filter.is_some() || !params.order_by.is_empty() {
            return Err(refuse(format!(
                "{name}() with FILTER or ORDER BY has no noisy form in the dp mode"
            )));
        }
        let out = match (name.as_str(), params.distinct, params.args.as_slice()) {
            ("count", false, []) => Out::Count(figure(Figure::Rows, None, &mut figures, &mut noised)),
            ("count", false, [Expr::Literal(v, _)]) if !v.is_null() => {
                Out::Count(figure(Figure::Rows, None, &mut figures, &mut noised))
            }
            ("count", false, [arg]) => Out::Count(figure(Figure::Count, Some(arg.clone()), &mut figures, &mut noised)),
            ("count", true, [arg]) => {
                Out::Count(figure(Figure::Distinct, Some(arg.clone()), &mut figures, &mut noised))
            }
            ("sum" | "avg" | "mean", false, [arg]) => {
                let bounds = match strip(arg) {
                    Expr::Column(c) => source(&a.input, c).and_then(|(d, c)| scope.dp_bounds.get(&(d, c)).copied()),
                    _ => None,
                };
                let Some([low, high]) = bounds else {
                    return Err(refuse(format!(
                        "{name}() in the dp mode takes a column the policy gives dp_bounds, itself (not an \
                         expression of it): the host clamps each value to the bounds to know what one row can add"
                    )));
                };
                // Summed as whole numbers in a wide decimal: exact, whatever
                // the order of the rows (a floating-point sum is not, and its
                // rounding can move a total by more than one row's bound).
                let (low, high) = (low.floor(), high.ceil());
                let numeric = arg.get_type(&input_schema).is_ok_and(|t| t.is_numeric());
                if !numeric {
                    return Err(refuse(format!(
                        "{name}() in the dp mode sums numbers; its argument is not a number"
                    )));
                }
                let value = cast(arg.clone(), DataType::Float64);
                let clamped = when(value.clone().lt(lit(low)), lit(low))
                    .when(value.clone().gt(lit(high)), lit(high))
                    .otherwise(value)
                    .map_err(rewrite_error)?;
                let clamped = cast(round(vec![clamped]), DataType::Decimal128(38, 0));
                let s = figure(Figure::Sum { low, high }, Some(clamped), &mut figures, &mut noised);
                if name == "sum" {
                    Out::Sum(s)
                } else {
                    let c = figure(Figure::Count, Some(arg.clone()), &mut figures, &mut noised);
                    Out::Mean {
                        sum: s,
                        count: c,
                        low,
                        high,
                    }
                }
            }
            _ => {
                return Err(refuse(format!(
                    "{name}() has no noisy form in the dp mode: use count, sum, avg or count(DISTINCT …)"
                )));
            }
        };
        outputs.push(out);
    }
    // Which groups are released.
    let mut published = Vec::new();
    // Keys the gate may trace: a column's own values. A computed key (a
    // CASE with literals) could carry a number the job chose.
    let mut traced_keys = Vec::new();
    for g in &a.group_expr {
        let list = match strip(g) {
            Expr::Column(c) => source(&a.input, c).and_then(|(d, c)| scope.public_values.get(&(d, c)).cloned()),
            Expr::GroupingSet(_) => {
                return Err(refuse(
                    "GROUPING SETS, CUBE and ROLLUP have no noisy form in the dp mode",
                ));
            }
            _ => None,
        };
        published.push(list);
        traced_keys.push(matches!(strip(g), Expr::Column(_)));
    }
    let groups = if a.group_expr.is_empty() {
        Keys::Global
    } else if published.iter().all(Option::is_some) {
        let lists: Vec<Vec<String>> = published.into_iter().flatten().collect();
        let combinations = lists.iter().try_fold(1usize, |n, l| n.checked_mul(l.len()));
        if combinations.is_none_or(|n| n > MAX_PUBLISHED_GROUPS) {
            return Err(refuse(format!(
                "the published values of these group columns make more than {MAX_PUBLISHED_GROUPS} groups"
            )));
        }
        Keys::Published(lists)
    } else {
        noised[0] = true;
        Keys::Threshold
    };
    let threshold = groups == Keys::Threshold;
    // The exact figures: keys, the entity, each figure's argument; each
    // entity's rows capped by a keyed-random choice; then per group.
    let threaded = thread_entity(&a.input, scope)?;
    let mut exprs: Vec<Expr> = a
        .group_expr
        .iter()
        .enumerate()
        .map(|(i, g)| g.clone().alias(format!("__inland_k{i}")))
        .collect();
    exprs.push(Expr::Column(Column::from_name(ENTITY)).alias("__inland_e"));
    exprs.extend(
        args.iter()
            .enumerate()
            .map(|(j, e)| e.clone().alias(format!("__inland_v{j}"))),
    );
    // Rows without an entity (an outer join's unmatched side, a missing
    // identifier) belong to no one the cap could bound: they do not count.
    let mut rows = LogicalPlanBuilder::from(threaded)
        .project(exprs)
        .map_err(rewrite_error)?
        .filter(col("__inland_e").is_not_null())
        .map_err(rewrite_error)?;
    if !one_row {
        // A keyed hash of the row's values: which rows count depends on
        // them and on the grant's secret, not on their place in a file.
        let columns: Vec<Expr> = std::iter::once("__inland_e".to_string())
            .chain((0..a.group_expr.len()).map(|i| format!("__inland_k{i}")))
            .chain((0..args.len()).map(|j| format!("__inland_v{j}")))
            .map(|name| col(&name))
            .collect();
        let seed = Sha256::digest(row_key.as_bytes());
        let seed = u64::from_le_bytes([seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7]]);
        let order = crate::dp_order::row_order(seed, columns);
        let rank = row_number()
            .partition_by(vec![col("__inland_e")])
            .order_by(vec![SortExpr::new(order, true, false)])
            .build()
            .map_err(rewrite_error)?
            .alias("__inland_rank");
        rows = rows
            .window(vec![rank])
            .map_err(rewrite_error)?
            .filter(col("__inland_rank").lt_eq(lit(u64::from(cap))))
            .map_err(rewrite_error)?;
    }
    let mut aggregates = vec![count(lit(1i64)).alias("__inland_rows")];
    for (j, f) in figures.iter().enumerate().skip(1) {
        let v = col(&format!("__inland_v{}", j - 1));
        aggregates.push(
            match f {
                Figure::Sum { .. } => sum(v),
                Figure::Distinct => count_distinct(v),
                Figure::Rows | Figure::Count => count(v),
            }
            .alias(format!("__inland_f{j}")),
        );
    }
    let keys: Vec<Expr> = (0..a.group_expr.len())
        .map(|i| col(&format!("__inland_k{i}")))
        .collect();
    let exact = rows
        .aggregate(keys, aggregates)
        .map_err(rewrite_error)?
        .build()
        .map_err(rewrite_error)?;
    // What one entity moves a sum by must be an exact integer well inside 64 bits.
    for f in &figures {
        if let Figure::Sum { low, high } = f
            && f64::from(cap) * low.abs().max(high.abs()) > MAX_SENSITIVITY
        {
            return Err(refuse(format!(
                "dp_bounds [{low}, {high}] with {cap} rows per entity let one entity move a sum by more than 2^52"
            )));
        }
    }
    let release = Release {
        keys: a.group_expr.len(),
        traced_keys,
        groups,
        figures,
        noised,
        outputs,
        rows_per_entity: cap,
        rho,
    };
    let node = LogicalPlan::Extension(Extension {
        node: Arc::new(NoisyNode {
            input: exact,
            schema: a.schema.clone(),
            release: Arc::new(release),
            facts: facts.clone(),
        }),
    });
    // A group that only one entity's rows make passes the threshold with
    // probability below KEY_DELTA, in each of the at most `cap` groups it is in.
    let delta = if threshold { f64::from(cap) * KEY_DELTA } else { 0.0 };
    Ok((node, datasets, delta))
}

/// An unqualified column of the rewritten plan.
fn col(name: &str) -> Expr {
    Expr::Column(Column::from_name(name))
}
