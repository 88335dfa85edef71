//! Cell plans: how the host turns an aggregate result into per-cell facts
//! for the gate (which column is a key, which a measure, where its
//! contributions are).

use super::lineage::unalias;
use crate::cell::{CellPlan, CellRole};
use crate::hidden::CONTRIB;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan};
use inland_gate::MeasureKind;

#[derive(Clone, PartialEq, Debug)]
pub(super) enum Origin {
    Group,
    Aggr(usize),
    /// A scale, offset, rounding, cast or ratio of the aggregates with
    /// these indices (and the group's keys) of one group.
    Derived(Vec<usize>),
    Computed,
}

/// Whether an expression is a plain function of its row's columns: no
/// subquery (its value would come from other rows), window or aggregate.
fn row_function(e: &Expr) -> bool {
    let mut plain = true;
    let _ = e.apply(|n| {
        if matches!(
            n,
            Expr::ScalarSubquery(_)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::WindowFunction(_)
                | Expr::AggregateFunction(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::Placeholder(_)
        ) {
            plain = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    plain
}

/// Where a computed projection expression comes from: the aggregates of its
/// group it is a function of, or the group's keys alone.
fn derived_origin(e: &Expr, input: &[Origin], schema: &datafusion::common::DFSchema) -> Origin {
    if !row_function(e) {
        return Origin::Computed;
    }
    let mut aggregates = Vec::new();
    let mut any = false;
    for c in e.column_refs() {
        any = true;
        match schema.index_of_column(c).ok().and_then(|i| input.get(i)) {
            Some(Origin::Group) => {}
            Some(Origin::Aggr(j)) => aggregates.push(*j),
            Some(Origin::Derived(js)) => aggregates.extend(js.iter().copied()),
            _ => return Origin::Computed,
        }
    }
    aggregates.sort_unstable();
    aggregates.dedup();
    match (any, aggregates.is_empty()) {
        (false, _) => Origin::Computed,
        // A function of the group's keys tells no more than the keys.
        (true, true) => Origin::Group,
        (true, false) => Origin::Derived(aggregates),
    }
}

pub(super) fn kind_of(e: &Expr) -> MeasureKind {
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
