//! Joins: which joins may touch protected data, and how join-key-only
//! columns may meet.

use super::lineage::KEY_RULE;
use super::lineage::{EntityCol, Facts, Lin, lineage, refs, refuse, unalias};
use crate::guard::QueryError;
use crate::hidden::{ENTITY, GROUP_SIZE};
use datafusion::common::DFSchema;
use datafusion::logical_expr::Expr;

/// The lineage of one side of a join's equality: a join-key-only column may
/// stand there alone (perhaps cast for type coercion), nothing computed from it.
pub(super) fn join_key(expr: &Expr, schema: &DFSchema, cols: &[Lin]) -> Result<Lin, QueryError> {
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
pub(super) fn analyze_join(j: &datafusion::logical_expr::Join, left: Facts, right: Facts) -> Result<Facts, QueryError> {
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
