//! Lineage: what each column of a plan carries (raw aggregate-only values,
//! a label, an entity, a join key), and the refusals the rule names.

use crate::guard::QueryError;
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::Expr;
use inland_policies::Label;
use inland_policies::policy::ColumnClass;

/// The rule's name in refusals.
pub(super) const RULE: &str = "aggregate-only";
/// The name of the join-key-only part of the rule.
pub(super) const KEY_RULE: &str = "join-key-only";

/// Lineage of one column: does it carry raw aggregate-only values, and what
/// is the most it can reveal?
#[derive(Debug, Clone, Copy)]
pub(super) struct Lin {
    /// Exactly an aggregate-only source column (possibly renamed).
    pub(super) direct: bool,
    /// Computed from an aggregate-only value without aggregating it.
    pub(super) tainted: bool,
    /// The label of the values it carries.
    pub(super) level: Label,
    /// Exactly a join-key-only source column (possibly renamed).
    pub(super) key: bool,
    /// Exactly the entity column of a protected dataset (possibly renamed).
    pub(super) entity: EntityCol,
    /// Computed, here or below, by an expression that can turn a row's value
    /// into NULL or 0/1 by a condition (CASE, NULLIF, a comparison, ...):
    /// inside an aggregate it selects rows as a FILTER would.
    pub(super) conditional: bool,
    /// May carry a constant the job wrote (a literal, arithmetic that builds
    /// one, a `VALUES` row) rather than only the data's values: never a
    /// group key over protected data (see `keys`).
    pub(super) written: bool,
}

/// Whether a column is a protected dataset's entity column, and in which
/// form the job sees it: equal values of the same form are the same entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EntityCol {
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
            conditional: false,
            written: false,
        }
    }
}

/// Whether an expression can select rows by a condition: CASE, conditional
/// functions, comparisons, boolean logic, NULL tests or a NULL literal.
pub(super) fn conditional(expr: &Expr) -> bool {
    use datafusion::common::tree_node::TreeNode;
    use datafusion::logical_expr::Operator;
    expr.exists(|e| {
        Ok(match e {
            Expr::Case(_) | Expr::InSubquery(_) | Expr::Exists(_) => true,
            e if super::keys::test(e) => true,
            Expr::Literal(v, _) => v.is_null(),
            Expr::BinaryExpr(b) => {
                b.op.supports_propagation()
                    || matches!(
                        b.op,
                        Operator::And
                            | Operator::Or
                            | Operator::IsDistinctFrom
                            | Operator::IsNotDistinctFrom
                            | Operator::RegexMatch
                            | Operator::RegexIMatch
                            | Operator::RegexNotMatch
                            | Operator::RegexNotIMatch
                            | Operator::LikeMatch
                            | Operator::ILikeMatch
                            | Operator::NotLikeMatch
                            | Operator::NotILikeMatch
                    )
            }
            Expr::ScalarFunction(f) => matches!(
                f.name().to_ascii_lowercase().as_str(),
                "nullif" | "coalesce" | "nvl" | "nvl2" | "ifnull" | "if" | "iff" | "greatest" | "least"
            ),
            _ => false,
        })
    })
    .unwrap_or(true)
}

pub(super) fn class_level(class: Option<ColumnClass>) -> Label {
    match class {
        Some(ColumnClass::DirectIdentifier) => Label::Identifying,
        Some(ColumnClass::Public) => Label::Public,
        _ => Label::RowLevel,
    }
}

impl Lin {
    pub(super) fn raw(self) -> bool {
        self.direct || self.tainted
    }
}

/// What the analysis found below a node.
pub(super) struct Facts {
    pub(super) cols: Vec<Lin>,
    /// Reads a dataset the policy protects.
    pub(super) protected: bool,
    /// Aggregations over protected data found.
    pub(super) aggregations: usize,
}

pub(super) fn refuse(message: impl Into<String>) -> QueryError {
    QueryError::refused(RULE, message)
}

pub(super) fn refuse_key(column: &str) -> QueryError {
    QueryError::refused(
        KEY_RULE,
        format!(
            "`{column}` is join-key-only: it can be compared with another join-key-only column in a join \
             condition, and never shown, filtered, grouped, sorted or computed on"
        ),
    )
}

/// The lineage of one column of `schema`.
pub(super) fn lineage(c: &Column, schema: &DFSchema, cols: &[Lin]) -> Result<Lin, QueryError> {
    let i = schema
        .index_of_column(c)
        .map_err(|e| QueryError::Internal(format!("lineage: {e}")))?;
    Ok(cols.get(i).copied().unwrap_or_default())
}

/// The lineage of what `expr` computes from the columns of `schema`. Any use
/// of a join-key-only column here is refused: only [`join_key`] admits one.
pub(super) fn refs(expr: &Expr, schema: &DFSchema, cols: &[Lin]) -> Result<Lin, QueryError> {
    let mut out = Lin::default();
    for c in expr.column_refs() {
        if crate::hidden::reserved(&c.name) {
            return Err(refuse("internal columns cannot be used"));
        }
        let l = lineage(c, schema, cols)?;
        if l.key {
            return Err(refuse_key(&c.name));
        }
        out.tainted |= l.raw();
        out.level = out.level.max(l.level);
        out.conditional |= l.conditional;
        out.written |= l.written;
    }
    out.conditional |= conditional(expr);
    out.written |= !super::keys::keeps_values(expr);
    Ok(out)
}

pub(super) fn unalias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unalias(&a.expr),
        other => other,
    }
}
