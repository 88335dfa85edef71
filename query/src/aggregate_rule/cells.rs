//! Cell plans: how the host turns an aggregate result into per-cell facts
//! for the gate (which column is a key, which a measure, where its
//! contributions are).

use super::keys::literal;
use super::lineage::unalias;
use crate::cell::{CellPlan, CellRole};
use crate::hidden::CONTRIB;
use datafusion::common::DFSchema;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, Operator};
use inland_gate::MeasureKind;

#[derive(Clone, PartialEq, Debug)]
pub(super) enum Origin {
    Group,
    Aggr(usize),
    /// A cast, rounding, change of unit or ratio of the aggregates with
    /// these indices of one group (see `derived`).
    Derived(Vec<usize>),
    Computed,
}

/// The aggregates of its group a projection expression is derived from, if
/// it is built only by the forms that keep a cell's facts meaningful: a
/// cast, a rounding (`round`, `floor`, `ceil`, `trunc` to a few digits), a
/// negation or absolute value, a scale by a power of ten, and the ratio,
/// product, sum or difference of two different aggregates of the group.
/// Nothing else: a literal offset, a CASE or a key lets the job choose the
/// value while the cell would still carry a clean group's facts.
fn derived(e: &Expr, input: &[Origin], schema: &DFSchema) -> Option<Vec<usize>> {
    match e {
        Expr::Alias(a) => derived(&a.expr, input, schema),
        Expr::Column(c) => match schema.index_of_column(c).ok().and_then(|i| input.get(i))? {
            Origin::Aggr(j) => Some(vec![*j]),
            Origin::Derived(js) => Some(js.clone()),
            _ => None,
        },
        Expr::Cast(c) => derived(&c.expr, input, schema),
        Expr::TryCast(c) => derived(&c.expr, input, schema),
        Expr::Negative(inner) => derived(inner, input, schema),
        Expr::ScalarFunction(f) => {
            let name = f.func.name().to_ascii_lowercase();
            if !["round", "floor", "ceil", "trunc", "abs"].contains(&name.as_str()) {
                return None;
            }
            let (first, digits) = f.args.split_first()?;
            digits
                .iter()
                .all(|d| literal(d).is_some_and(|v| v.fract() == 0.0 && v.abs() <= 12.0))
                .then(|| derived(first, input, schema))?
        }
        Expr::BinaryExpr(b) => {
            let (l, r) = (derived(&b.left, input, schema), derived(&b.right, input, schema));
            match (b.op, l, r) {
                (Operator::Multiply | Operator::Divide, Some(l), Some(r))
                | (Operator::Plus | Operator::Minus, Some(l), Some(r))
                    if l != r =>
                {
                    let mut both: Vec<usize> = l.into_iter().chain(r).collect();
                    both.sort_unstable();
                    both.dedup();
                    Some(both)
                }
                (Operator::Multiply, Some(d), None) if power_of_ten(&b.right) => Some(d),
                (Operator::Multiply, None, Some(d)) if power_of_ten(&b.left) => Some(d),
                (Operator::Divide, Some(d), None) if power_of_ten(&b.right) => Some(d),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether `e` is ±10^k for a k within ±12 (a change of unit).
fn power_of_ten(e: &Expr) -> bool {
    literal(e).is_some_and(|v| {
        let k = v.abs().log10();
        v != 0.0 && (k - k.round()).abs() < 1e-9 && k.abs() <= 12.0
    })
}

/// Where a computed projection expression comes from: the aggregates it is
/// derived from, or a key when it is a cast of a group key.
fn derived_origin(e: &Expr, input: &[Origin], schema: &DFSchema) -> Origin {
    if let Expr::Cast(c) = e
        && let Expr::Column(col) = unalias(&c.expr)
        && schema.index_of_column(col).ok().and_then(|i| input.get(i)) == Some(&Origin::Group)
    {
        return Origin::Group;
    }
    match derived(e, input, schema) {
        Some(js) if !js.is_empty() => Origin::Derived(js),
        _ => Origin::Computed,
    }
}

/// A spread (variance, standard deviation) is a magnitude too: where one
/// person dominates a group's total, the spread is about that person's value
/// over the group's size, so it gets the dominance and p% rules of its
/// argument's per-person totals, as a sum or mean does.
pub(super) fn kind_of(e: &Expr) -> MeasureKind {
    match unalias(e) {
        Expr::AggregateFunction(AggregateFunction { func, .. }) => match func.name().to_ascii_lowercase().as_str() {
            "count" => MeasureKind::Frequency,
            "sum" | "avg" | "mean" | "var" | "var_samp" | "var_sample" | "var_pop" | "variance" | "variance_pop"
            | "stddev" | "stddev_samp" | "stddev_pop" => MeasureKind::Magnitude,
            _ => MeasureKind::Other,
        },
        _ => MeasureKind::Other,
    }
}

/// The aggregation the rewrite works on, through the shapes it supports.
pub(super) fn find_aggregate(plan: &LogicalPlan) -> Option<&Aggregate> {
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
pub(super) fn origins(plan: &LogicalPlan) -> Option<Vec<Origin>> {
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
                            .and_then(|i| input.get(i).cloned())
                            .unwrap_or(Origin::Computed),
                        other => derived_origin(other, &input, p.input.schema()),
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
pub(super) fn cell_plan(plan: &LogicalPlan) -> (Option<CellPlan>, Vec<(usize, String)>) {
    let Some(agg) = find_aggregate(plan) else {
        return (None, Vec::new());
    };
    let magnitude: Vec<(usize, String)> = agg
        .aggr_expr
        .iter()
        .enumerate()
        .filter(|(_, e)| kind_of(e) == MeasureKind::Magnitude)
        .filter(|(_, e)| matches!(unalias(e), Expr::AggregateFunction(f) if f.params.args.len() == 1))
        .map(|(j, _)| (j, format!("{CONTRIB}{j}")))
        .collect();
    let Some(origins) = origins(plan) else {
        return (None, magnitude);
    };
    let source = |j: usize| agg.aggr_expr.get(j).map(|e| unalias(e).to_string()).unwrap_or_default();
    let kind = |j: usize| agg.aggr_expr.get(j).map(kind_of).unwrap_or(MeasureKind::Other);
    let contrib = |j: usize| magnitude.iter().position(|(m, _)| *m == j);
    let columns = origins
        .iter()
        .map(|o| match o {
            Origin::Group => CellRole::Key,
            Origin::Aggr(j) => CellRole::Measure {
                source: source(*j),
                kind: kind(*j),
                contrib: contrib(*j),
            },
            Origin::Derived(js) => {
                let kinds: Vec<MeasureKind> = js.iter().map(|&j| kind(j)).collect();
                // The strictest rules of what it came from: a magnitude's
                // dominance and p% rules, otherwise a frequency's.
                let kind = if kinds.contains(&MeasureKind::Magnitude) {
                    MeasureKind::Magnitude
                } else if kinds.contains(&MeasureKind::Frequency) {
                    MeasureKind::Frequency
                } else {
                    MeasureKind::Other
                };
                CellRole::Derived {
                    source: format!(
                        "derived from {}",
                        js.iter().map(|&j| source(j)).collect::<Vec<_>>().join(", ")
                    ),
                    kind,
                    contribs: js.iter().filter_map(|&j| contrib(j)).collect(),
                }
            }
            Origin::Computed => CellRole::Other,
        })
        .collect();
    let contribs = magnitude.len();
    (Some(CellPlan { columns, contribs }), magnitude)
}
