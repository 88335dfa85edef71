//! Group keys: the forms a GROUP BY expression over protected data may
//! take. A key cell is traced to the host's facts, so the gate vouches for
//! it; a literal the job wrote into it (`concat(district, '11496')`, a
//! `CASE … THEN 11496`, `x * 0 + 11496`) would carry out a number the job
//! computed inside the sandbox under that cover. Keys must pass the data's
//! values through: deny by default, then allow the forms analysts use.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNode;
use datafusion::logical_expr::{Expr, Operator};
use inland_gate::leak::numeral;

/// The rule's name in refusals.
pub(super) const GROUP_KEY_RULE: &str = "group-keys";

/// What the refusal says: which forms are allowed, and why.
pub(super) const GROUP_KEY_FORMS: &str = "over a protected dataset a group key passes the data's values \
     through, so that no number the job chose can ride out in a key cell: columns and their casts, \
     date_trunc/date_part, floor/ceil/round/trunc(x / w) [* w] with a width w of a whole number up to \
     100 or 1, 2 or 5 × 10^k, substrings, case changes, trims, lengths of columns, concat of up to four \
     different columns, comparisons, and CASE or COALESCE with short labels (32 characters in all) \
     that write no number";

/// A numeric literal's value.
pub(super) fn literal(e: &Expr) -> Option<f64> {
    let mut e = e;
    while let Expr::Alias(a) = e {
        e = &a.expr;
    }
    let Expr::Literal(v, _) = e else {
        return None;
    };
    match v.cast_to(&DataType::Float64).ok()? {
        ScalarValue::Float64(Some(x)) => Some(x),
        _ => None,
    }
}

/// Whether `e` passes the values of its columns through without a constant
/// the job chose reaching the result.
pub(super) fn keeps_values(e: &Expr) -> bool {
    let forms = |e: &Expr| match e {
        Expr::Alias(a) => keeps_values(&a.expr),
        Expr::Column(_) => true,
        Expr::Cast(c) => keeps_values(&c.expr),
        Expr::TryCast(c) => keeps_values(&c.expr),
        Expr::Negative(inner) => plain(inner),
        Expr::Literal(v, _) => label(v),
        // Booleans: one bit a row, chosen by the data.
        e if test(e) => true,
        Expr::Case(c) => {
            c.when_then_expr.iter().all(|(_, then)| keeps_values(then))
                && c.else_expr.as_deref().is_none_or(keeps_values)
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
            | Operator::IsNotDistinctFrom
            | Operator::LikeMatch
            | Operator::ILikeMatch
            | Operator::NotLikeMatch
            | Operator::NotILikeMatch => true,
            Operator::StringConcat => keeps_values(&b.left) && keeps_values(&b.right),
            Operator::Divide => (plain(&b.left) && width(&b.right)) || (plain(&b.left) && plain(&b.right)),
            Operator::Multiply => {
                ((plain(&b.left) || rounded(&b.left)) && width(&b.right))
                    || (width(&b.left) && (plain(&b.right) || rounded(&b.right)))
                    || (plain(&b.left) && plain(&b.right))
            }
            Operator::Plus | Operator::Minus | Operator::Modulo => plain(&b.left) && plain(&b.right),
            _ => false,
        },
        Expr::ScalarFunction(f) => {
            let args = &f.args;
            match f.func.name().to_ascii_lowercase().as_str() {
                "upper" | "lower" | "initcap" | "trim" | "btrim" | "ltrim" | "rtrim" | "concat" | "concat_ws"
                | "coalesce" | "nvl" | "ifnull" | "nullif" | "inland_mask" | "to_date" | "replace" => {
                    args.iter().all(keeps_values)
                }
                // A number of the data's own: of a column, never of a label
                // (`length('aaa…')` would be any number the job likes).
                "abs" | "length" | "char_length" | "character_length" | "octet_length" => args.iter().all(plain),
                // Positions choose which characters of the data, never add any.
                "substr" | "substring" | "left" | "right" => args.split_first().is_some_and(|(text, positions)| {
                    keeps_values(text)
                        && positions
                            .iter()
                            .all(|p| keeps_values(p) || literal(p).is_some_and(|v| v.fract() == 0.0))
                }),
                // The unit is a word; the value is the data's.
                "date_trunc" | "date_part" | "datepart" => args.split_first().is_some_and(|(unit, rest)| {
                    matches!(unit, Expr::Literal(v, _) if label(v)) && rest.iter().all(keeps_values)
                }),
                "floor" | "ceil" | "trunc" | "round" => rounded(e),
                _ => false,
            }
        }
        _ => false,
    };
    forms(e) && !repeats_a_column(e) && few_columns(e) && short_labels(e)
}

/// At most this many column references in one key: a key's length must
/// not be a count the job chose by naming columns again under other names.
const MAX_KEY_COLUMNS: usize = 4;
/// At most this many characters of labels in one key: words spell numbers
/// too (`'beddjg'` with a = 0, b = 1, ...), so their room is kept small.
const MAX_LABEL_CHARS: usize = 32;

fn few_columns(e: &Expr) -> bool {
    let mut n = 0usize;
    let _ = e.apply(|x| {
        n += usize::from(matches!(x, Expr::Column(_)));
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    n <= MAX_KEY_COLUMNS
}

fn short_labels(e: &Expr) -> bool {
    let mut chars = 0usize;
    let _ = e.apply(|x| {
        if let Expr::Literal(
            ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)),
            _,
        ) = x
        {
            chars += s.chars().count();
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    chars <= MAX_LABEL_CHARS
}

/// A test of a value (NOT, IS NULL and the like, BETWEEN, LIKE, IN list):
/// a boolean the data decides.
pub(super) fn test(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Not(_)
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::IsTrue(_)
            | Expr::IsFalse(_)
            | Expr::IsUnknown(_)
            | Expr::IsNotTrue(_)
            | Expr::IsNotFalse(_)
            | Expr::IsNotUnknown(_)
            | Expr::Between(_)
            | Expr::Like(_)
            | Expr::SimilarTo(_)
            | Expr::InList(_)
    )
}

/// A column, perhaps cast or negated: the data's value itself.
fn plain(e: &Expr) -> bool {
    match e {
        Expr::Alias(a) => plain(&a.expr),
        Expr::Column(_) => true,
        Expr::Cast(c) => plain(&c.expr),
        Expr::TryCast(c) => plain(&c.expr),
        Expr::Negative(inner) => plain(inner),
        _ => false,
    }
}

/// A rounding of a column or of a column divided by a width, to whole
/// digits: the bucket a value falls in.
fn rounded(e: &Expr) -> bool {
    let Expr::ScalarFunction(f) = e else {
        return false;
    };
    if !["floor", "ceil", "trunc", "round"].contains(&f.func.name().to_ascii_lowercase().as_str()) {
        return false;
    }
    let Some((x, digits)) = f.args.split_first() else {
        return false;
    };
    let mut x = x;
    while let Expr::Cast(c) = x {
        x = &c.expr;
    }
    let bucket = plain(x)
        || matches!(x, Expr::BinaryExpr(b) if matches!(b.op, Operator::Divide | Operator::Multiply)
            && plain(&b.left) && width(&b.right));
    bucket
        && digits
            .iter()
            .all(|d| literal(d).is_some_and(|v| v.fract() == 0.0 && v.abs() <= 12.0))
}

/// A bucket width analysts use: a whole number up to 100, or 1, 2 or 5 ×
/// 10^k. Anything else would let the job write a number of its choosing
/// into the keys (the multiples of it); these leave it a few bits at most.
fn width(e: &Expr) -> bool {
    literal(e).is_some_and(|v| {
        if v <= 0.0 || !v.is_finite() {
            return false;
        }
        if v.fract() == 0.0 && v <= 100.0 {
            return true;
        }
        let k = v.log10().floor();
        let m = v / 10f64.powf(k);
        k.abs() <= 12.0 && [1.0, 2.0, 5.0].iter().any(|n| (m - n).abs() < 1e-9)
    })
}

/// A literal that may stand in a key: a NULL, a boolean, or a text label
/// with no digit in it. Numbers and dates are values the job wrote.
fn label(v: &ScalarValue) -> bool {
    if v.is_null() {
        return true;
    }
    match v {
        ScalarValue::Boolean(_) => true,
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
            !s.chars().any(numeral)
        }
        _ => false,
    }
}

/// Whether a column is repeated inside the expression: `concat(d, d, d)`
/// writes its number of repetitions into the key's length.
fn repeats_a_column(e: &Expr) -> bool {
    let mut seen = Vec::new();
    let mut repeated = false;
    let _ = e.apply(|n| {
        if let Expr::Column(c) = n {
            repeated |= seen.contains(&c);
            seen.push(c);
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    repeated
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    fn f(name: &str, args: Vec<Expr>) -> Expr {
        use datafusion::functions::{datetime, math, string, unicode};
        let func = match name {
            "concat" => string::concat(),
            "floor" => math::floor(),
            "round" => math::round(),
            "upper" => string::upper(),
            "substr" => unicode::substr(),
            "date_trunc" => datetime::date_trunc(),
            "lpad" => unicode::lpad(),
            "length" => unicode::character_length(),
            other => panic!("no {other} in the test"),
        };
        Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(func, args))
    }

    #[test]
    fn the_forms_analysts_use_are_keys() {
        for e in [
            col("district"),
            f("upper", vec![col("district")]),
            f("floor", vec![col("age") / lit(10)]),
            f("floor", vec![col("age") / lit(5)]) * lit(5),
            f(
                "floor",
                vec![Expr::Cast(datafusion::logical_expr::Cast::new(
                    Box::new(col("age") / lit(20)),
                    datafusion::arrow::datatypes::DataType::Float64,
                ))],
            ) * lit(20.0),
            f("date_trunc", vec![lit("month"), col("day")]),
            f("substr", vec![col("mobile"), lit(1), lit(3)]),
            f("concat", vec![col("district"), lit(" / "), col("service_type")]),
            datafusion::logical_expr::when(col("age").gt(lit(60)), lit("old"))
                .otherwise(lit("young"))
                .unwrap_or_else(|e| panic!("{e}")),
            col("age").gt(lit(11496)),
        ] {
            assert!(keeps_values(&e), "{e}");
        }
    }

    #[test]
    fn a_number_the_job_wrote_is_not_a_key() {
        for e in [
            f("concat", vec![col("district"), lit("11496")]),
            f("concat", vec![col("district"), lit("１１４９６")]),
            col("age") * lit(0) + lit(11496),
            col("age") + lit(11496),
            col("age") * lit(11496),
            f("floor", vec![col("age") / lit(11496)]) * lit(11496),
            lit(11496),
            datafusion::logical_expr::when(col("age").gt(lit(60)), lit(11496))
                .otherwise(lit(1))
                .unwrap_or_else(|e| panic!("{e}")),
            datafusion::logical_expr::when(col("age").gt(lit(60)), lit("band 11496"))
                .end()
                .unwrap_or_else(|e| panic!("{e}")),
            (col("age") / col("age") + col("age") / col("age")) * col("age"),
            f("concat", vec![col("district"), col("district"), col("district")]),
            f("lpad", vec![col("district"), lit(11496)]),
            f("concat", vec![col("district"), lit("一一四九六")]),
            f(
                "length",
                vec![
                    datafusion::logical_expr::when(col("age").lt(lit(0)), lit(""))
                        .otherwise(lit("a".repeat(30)))
                        .unwrap_or_else(|e| panic!("{e}")),
                ],
            ),
            f("concat", vec![col("a"), col("b"), col("c"), col("d"), col("e")]),
            f(
                "concat",
                vec![col("district"), lit("abcdefghijklmnopqrstuvwxyzabcdefghij")],
            ),
            f("round", vec![col("age"), lit(11496)]),
        ] {
            assert!(!keeps_values(&e), "{e}");
        }
    }
}
