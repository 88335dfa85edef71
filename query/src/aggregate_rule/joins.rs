//! Joins: which joins may touch protected data, and how join-key-only
//! columns may meet.

use super::lineage::KEY_RULE;
use super::lineage::{EntityCol, Facts, Lin, lineage, refs, refuse, unalias};
use crate::guard::{QueryError, QueryScope};
use datafusion::common::DFSchema;
use datafusion::logical_expr::{Expr, LogicalPlan};

/// The lineage of one side of a join's equality: a join-key-only column may
/// stand there alone (perhaps cast for type coercion), nothing computed from it.
pub(super) fn join_key(expr: &Expr, schema: &DFSchema, cols: &[Lin]) -> Result<Lin, QueryError> {
    let mut e = unalias(expr);
    while let Expr::Cast(c) = e {
        e = unalias(&c.expr);
    }
    match e {
        Expr::Column(c) if !crate::hidden::reserved(&c.name) => lineage(c, schema, cols),
        other => refs(other, schema, cols),
    }
}

/// Joins: between datasets the policy leaves unrestricted; between one
/// protected dataset and unrestricted ones (the entities counted are the
/// protected side's); and between protected datasets on their entity
/// columns, an inner join, where every row's two entities are one.
/// Join-key-only columns may be joined only with each other, so a job
/// cannot test guesses of an identifier against them.
pub(super) fn analyze_join(
    j: &datafusion::logical_expr::Join,
    left: Facts,
    right: Facts,
    scope: &QueryScope,
) -> Result<Facts, QueryError> {
    use datafusion::common::JoinType;
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
    // One protected side: the other must match each protected row at most
    // once, or a job repeats one person's row (a VALUES list with a value
    // many times) and reads it back from the difference of two sums.
    let repeats = matches!(
        j.join_type,
        JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full
    );
    if repeats && left.protected != right.protected {
        let (other, keys): (&LogicalPlan, Vec<&Expr>) = if left.protected {
            (&j.right, j.on.iter().map(|(_, r)| r).collect())
        } else {
            (&j.left, j.on.iter().map(|(l, _)| l).collect())
        };
        let names: Option<Vec<&str>> = keys
            .iter()
            .map(|k| match unalias(k) {
                Expr::Column(c) => Some(c.name.as_str()),
                _ => None,
            })
            .collect();
        // No equi-keys (a cross join, or a scalar subquery turned into a join on
        // `true`): only a side of at most one row leaves each protected row single.
        let single = |n: &Vec<&str>| {
            if n.is_empty() {
                one_row(other)
            } else {
                unique_on(other, n, scope)
            }
        };
        if !names.as_ref().is_some_and(single) {
            return Err(refuse(
                "a dataset joined to a protected one must match each protected row at most once: join on \
                 columns of it that registration proved unique (or that a GROUP BY or DISTINCT makes unique)",
            ));
        }
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

/// Whether `plan` has at most one row: an aggregation without GROUP BY, a
/// one-row VALUES list, or either under projections, filters and aliases.
fn one_row(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Aggregate(a) => a.group_expr.is_empty(),
        LogicalPlan::Values(v) => v.values.len() <= 1,
        LogicalPlan::EmptyRelation(_) => true,
        LogicalPlan::Projection(p) => one_row(&p.input),
        LogicalPlan::SubqueryAlias(a) => one_row(&a.input),
        LogicalPlan::Filter(f) => one_row(&f.input),
        LogicalPlan::Sort(s) => one_row(&s.input),
        LogicalPlan::Limit(l) => one_row(&l.input),
        _ => false,
    }
}

/// Whether `plan` has at most one row for each value of the columns `keys`
/// (by name): a registered dataset's proven-unique column, a GROUP BY or
/// DISTINCT over them, or a VALUES list whose values do not repeat. Anything
/// else is not known to be unique, and is not.
fn unique_on(plan: &LogicalPlan, keys: &[&str], scope: &QueryScope) -> bool {
    // Keys are followed by name: two columns of one name (`a.f`, `b.f`) would
    // let one stand for the other, so such a plan is not known to be unique.
    let mut names = std::collections::HashSet::new();
    if !plan.schema().fields().iter().all(|f| names.insert(f.name().as_str())) {
        return false;
    }
    match plan {
        LogicalPlan::TableScan(t) => scope
            .unique_columns
            .get(t.table_name.table())
            .is_some_and(|u| keys.iter().any(|k| u.contains(*k))),
        LogicalPlan::Projection(p) => {
            let mut inner = Vec::new();
            for k in keys {
                let Some(i) = p.schema.index_of_column_by_name(None, k) else {
                    return false;
                };
                match p.expr.get(i).map(unalias) {
                    Some(Expr::Column(c)) => inner.push(c.name.as_str()),
                    _ => return false,
                }
            }
            unique_on(&p.input, &inner, scope)
        }
        LogicalPlan::SubqueryAlias(a) => unique_on(&a.input, keys, scope),
        LogicalPlan::Filter(f) => unique_on(&f.input, keys, scope),
        LogicalPlan::Sort(s) => unique_on(&s.input, keys, scope),
        LogicalPlan::Limit(l) => unique_on(&l.input, keys, scope),
        LogicalPlan::Aggregate(a) => a.group_expr.iter().all(|g| match unalias(g) {
            Expr::Column(c) => keys.contains(&c.name.as_str()),
            _ => false,
        }),
        LogicalPlan::Distinct(datafusion::logical_expr::Distinct::All(input)) => input
            .schema()
            .fields()
            .iter()
            .all(|f| keys.contains(&f.name().as_str())),
        LogicalPlan::Values(v) => {
            let columns: Option<Vec<usize>> = keys.iter().map(|k| v.schema.index_of_column_by_name(None, k)).collect();
            let Some(columns) = columns else { return false };
            let mut seen = std::collections::HashSet::new();
            v.values.iter().all(|row| {
                let key: Option<Vec<String>> = columns
                    .iter()
                    .map(|&i| match row.get(i) {
                        Some(Expr::Literal(value, _)) => Some(value.to_string()),
                        _ => None,
                    })
                    .collect();
                key.is_some_and(|k| seen.insert(k))
            })
        }
        _ => false,
    }
}
