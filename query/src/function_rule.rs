//! The function allow-list: under a policy, a query may call only scalar
//! functions known to be pure and bounded. Anything else — random numbers,
//! regular expressions, hashing, array and struct functions, functions added
//! by a later DataFusion — is refused until an admin has reason to allow it.

use crate::guard::{Guarded, QueryError, QueryGuard, QueryScope};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan};

const RULE: &str = "functions";

/// Scalar functions a job may call under a policy.
pub const ALLOWED_SCALAR: &[&str] = &[
    "abs",
    "ceil",
    "floor",
    "round",
    "trunc",
    "sqrt",
    "cbrt",
    "power",
    "pow",
    "exp",
    "ln",
    "log",
    "log2",
    "log10",
    "signum",
    "greatest",
    "least",
    "coalesce",
    "nullif",
    "nvl",
    "ifnull",
    "lower",
    "upper",
    "length",
    "char_length",
    "character_length",
    "octet_length",
    "trim",
    "btrim",
    "ltrim",
    "rtrim",
    "substr",
    "substring",
    "left",
    "right",
    "concat",
    "concat_ws",
    "replace",
    "starts_with",
    "ends_with",
    "strpos",
    "lpad",
    "rpad",
    "initcap",
    "date_trunc",
    "date_part",
    "datepart",
    "to_date",
    "make_date",
    "date_bin",
];

/// The function allow-list as a query guard (only when a policy is in force).
pub struct FunctionGuard;

impl QueryGuard for FunctionGuard {
    fn name(&self) -> &'static str {
        RULE
    }

    fn check(&self, plan: LogicalPlan, scope: &QueryScope) -> Result<Guarded, QueryError> {
        if scope.protected.is_empty() {
            return Ok(Guarded::unchanged(plan));
        }
        let mut refused: Option<String> = None;
        plan.apply_with_subqueries(|node| {
            node.apply_expressions(|e| {
                e.apply(|e| {
                    if let Expr::ScalarFunction(f) = e {
                        let name = f.func.name().to_ascii_lowercase();
                        // The masking function is the host's own; jobs cannot name it.
                        if name != "inland_mask" && !ALLOWED_SCALAR.contains(&name.as_str()) {
                            refused = Some(name);
                            return Ok(TreeNodeRecursion::Stop);
                        }
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })
        })
        .map_err(QueryError::from)?;
        match refused {
            Some(name) => Err(QueryError::refused(
                RULE,
                format!("function `{name}` is not on the allow-list"),
            )),
            None => Ok(Guarded::unchanged(plan)),
        }
    }
}
