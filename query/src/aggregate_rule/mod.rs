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

mod analysis;
mod cells;
mod dp;
mod joins;
mod keys;
mod lineage;
mod rewrite;
mod source;

use analysis::analyze;
use cells::cell_plan;
use lineage::{Facts, refuse, refuse_key};
use rewrite::{rewrite, without_entity};

use crate::guard::{Guarded, QueryError, QueryGuard, QueryScope};
use crate::keep::Keep;
use datafusion::logical_expr::{Expr, LogicalPlan};
use inland_policies::Label;

use crate::hidden::ENTITY;

use lineage::RULE;

/// The label of a result and why: the most revealing column it returns.
/// Refuses a job's plan that names anything with the host's prefix: its
/// columns would collide with the hidden ones the rewrite adds, and the
/// host's own error would answer the job.
fn refuse_reserved_names(plan: &LogicalPlan) -> Result<(), QueryError> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut found = None;
    let _ = plan.apply_with_subqueries(|n| {
        for e in n.expressions() {
            let _ = e.apply(|x| {
                if let Expr::Alias(a) = x
                    && crate::hidden::reserved(&a.name)
                {
                    found = Some(a.name.clone());
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            });
        }
        if let LogicalPlan::SubqueryAlias(a) = n
            && crate::hidden::reserved(a.alias.table())
        {
            found = Some(a.alias.table().to_string());
        }
        Ok(if found.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    match found {
        Some(name) => Err(refuse(format!(
            "`{name}`: names starting with `__inland_` are the host's"
        ))),
        None => Ok(()),
    }
}

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
        refuse_reserved_names(&plan)?;
        let facts = analyze(&plan, scope)?;
        if let Some((_, field)) = facts.cols.iter().zip(plan.schema().fields()).find(|(l, _)| l.key) {
            return Err(refuse_key(field.name()));
        }
        let mut label = root_label(&plan, &facts);
        if facts.protected && facts.aggregations > 0 && label.0 < Label::Aggregate {
            // Which rows came back (a HAVING over a protected sum) or any
            // constant it returns still depends on the aggregates.
            label = (
                Label::Aggregate,
                "aggregate: the result depends on aggregates over a protected dataset".into(),
            );
        }
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
        if scope.dp.is_some() && facts.protected {
            let dp = dp::plan(&plan, scope)?;
            if label.0 < Label::Aggregate {
                label = (
                    Label::Aggregate,
                    "aggregate: released by the host with noise (dp)".into(),
                );
            }
            return Ok(Guarded {
                privacy: Some(crate::guard::PrivacyCost {
                    rho: dp.rho,
                    datasets: dp.datasets,
                    delta: dp.delta,
                    facts: dp.facts,
                }),
                ..Guarded::labelled(dp.plan, label)
            });
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
