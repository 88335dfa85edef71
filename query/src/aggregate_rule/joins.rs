//! Joins: which joins may touch protected data, and how join-key-only
//! columns may meet.

use super::lineage::KEY_RULE;
use super::lineage::{EntityCol, Facts, Lin, lineage, refs, refuse, unalias};
use crate::guard::{QueryError, QueryScope};
use arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};

/// The lineage of one side of a join's equality: a join-key-only column may
/// stand there alone (perhaps cast for type coercion), nothing computed from it.
pub(super) fn join_key(expr: &Expr, schema: &DFSchema, cols: &[Lin]) -> Result<Lin, QueryError> {
    let mut e = unalias(expr);
    let mut casts = Vec::new();
    while let Expr::Cast(c) = e {
        casts.push(c);
        e = unalias(&c.expr);
    }
    let lin = match e {
        Expr::Column(c) if !crate::hidden::reserved(&c.name) => lineage(c, schema, cols)?,
        other => refs(other, schema, cols)?,
    };
    // A cast that can fail answers, by failing, a question about a key's
    // value (is it a number, is it above 127) before any join or group: a
    // join-key-only column may only be cast where no value can fail.
    if lin.key {
        for c in casts {
            let from = c
                .expr
                .get_type(schema)
                .map_err(|e| QueryError::Internal(e.to_string()))?;
            if !cannot_fail(&from, c.field.data_type()) {
                return Err(QueryError::refused(
                    KEY_RULE,
                    format!(
                        "`{expr}` casts a join-key-only column from {from} to {}, which can fail on a value; \
                         join on the column as it is",
                        c.field.data_type()
                    ),
                ));
            }
        }
    }
    Ok(lin)
}

/// Whether every value of type `from` casts to `to`, and distinct values
/// stay distinct: the same kind of value re-encoded or widened (strings to
/// strings, integers to wider integers, integers of up to 32 bits to
/// doubles, decimals to ones with as many digits each side of the point).
fn cannot_fail(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let string = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    let rank = |t: &DataType| match t {
        Int8 => Some((8, true)),
        Int16 => Some((16, true)),
        Int32 => Some((32, true)),
        Int64 => Some((64, true)),
        UInt8 => Some((8, false)),
        UInt16 => Some((16, false)),
        UInt32 => Some((32, false)),
        UInt64 => Some((64, false)),
        _ => None,
    };
    match (from, to) {
        (Dictionary(_, v), to) => cannot_fail(v, to),
        (from, to) if from == to => true,
        (from, to) if string(from) && string(to) => true,
        // Up to 32 bits, every integer is exact in a double; wider ones are
        // not, and distinct keys would meet.
        (from, Float64) if rank(from).is_some_and(|(bits, _)| bits <= 32) => true,
        (Float32, Float64) => true,
        (Date32, Date64) => true,
        (Decimal128(p1, s1), Decimal128(p2, s2) | Decimal256(p2, s2)) => {
            s2 >= s1 && i16::from(*p2) - i16::from(*s2) >= i16::from(*p1) - i16::from(*s1)
        }
        (from, to) => match (rank(from), rank(to)) {
            (Some((a, signed_a)), Some((b, signed_b))) => {
                (signed_a == signed_b && b >= a) || (!signed_a && signed_b && b > a)
            }
            _ => false,
        },
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

#[cfg(test)]
mod tests {
    use super::cannot_fail;
    use arrow::datatypes::DataType::*;

    #[test]
    fn only_casts_no_value_can_fail_count_as_safe_for_keys() {
        let safe = [
            (Int32, Int64),
            (UInt32, Int64),
            (UInt8, UInt16),
            (Int16, Float64),
            (Utf8View, Utf8),
            (Utf8, LargeUtf8),
            (Decimal128(10, 2), Decimal128(12, 2)),
            (Decimal128(10, 2), Decimal128(13, 3)),
            (Date32, Date64),
        ];
        let unsafe_ = [
            (Int64, Int32),
            (Int32, UInt64),
            (UInt64, Int64),
            (Utf8, Int64),
            (Int64, Float64),
            (UInt64, Float64),
            (Utf8View, Date32),
            (Float64, Int64),
            (Decimal128(10, 2), Decimal128(10, 3)),
            (Decimal128(12, 2), Decimal128(11, 2)),
        ];
        for (from, to) in safe {
            assert!(cannot_fail(&from, &to), "{from} -> {to}");
        }
        for (from, to) in unsafe_ {
            assert!(!cannot_fail(&from, &to), "{from} -> {to}");
        }
    }
}
