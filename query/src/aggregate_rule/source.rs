//! Where a column of a plan comes from: the dataset column it carries
//! unchanged, if any (for dp bounds, published values and the sketch's
//! measure).

use super::lineage::unalias;
use datafusion::common::{Column, JoinType};
use datafusion::logical_expr::{Cast, Expr, LogicalPlan};

/// The dataset column a column of `plan` carries unchanged, if any.
pub(super) fn source(plan: &LogicalPlan, column: &Column) -> Option<(String, String)> {
    let i = plan.schema().index_of_column(column).ok()?;
    source_at(plan, i)
}

fn source_at(plan: &LogicalPlan, i: usize) -> Option<(String, String)> {
    let below = |p: &LogicalPlan, j: usize| source_at(p, j);
    match plan {
        LogicalPlan::TableScan(t) => Some((
            t.table_name.table().to_string(),
            t.projected_schema.field(i).name().clone(),
        )),
        LogicalPlan::Projection(p) => match strip(p.expr.get(i)?) {
            Expr::Column(c) => source(&p.input, c),
            _ => None,
        },
        LogicalPlan::Filter(f) => below(&f.input, i),
        LogicalPlan::Sort(s) => below(&s.input, i),
        LogicalPlan::SubqueryAlias(a) => below(&a.input, i),
        LogicalPlan::Join(j) => match j.join_type {
            JoinType::RightSemi | JoinType::RightAnti => below(&j.right, i),
            JoinType::LeftSemi | JoinType::LeftAnti => below(&j.left, i),
            _ => {
                let left = j.left.schema().fields().len();
                if i < left {
                    below(&j.left, i)
                } else {
                    below(&j.right, i - left)
                }
            }
        },
        _ => None,
    }
}

/// An expression without aliases and casts.
pub(super) fn strip(e: &Expr) -> &Expr {
    match unalias(e) {
        Expr::Cast(Cast { expr, .. }) => strip(expr),
        other => other,
    }
}
