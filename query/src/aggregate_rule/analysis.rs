//! The analysis: the lineage of every column up the plan (does it carry raw
//! aggregate-only values, what label, is it an entity or a join key), and
//! the checks on aggregates and the expressions over them.

use super::joins::analyze_join;
use super::keys::{GROUP_KEY_FORMS, GROUP_KEY_RULE};
use super::lineage::{EntityCol, Facts, Lin, class_level, lineage, refs, refuse, refuse_key, unalias};
use super::rewrite::reads_protected;
use crate::guard::{QueryError, QueryScope};
use crate::hidden::ENTITY;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Expr, LogicalPlan};
use inland_policies::Label;
use inland_policies::policy::ColumnClass;

pub(super) fn analyze(plan: &LogicalPlan, scope: &QueryScope) -> Result<Facts, QueryError> {
    // Subqueries the optimizer could not turn into joins sit inside
    // expressions, out of this walk's reach: over protected data, deny.
    let mut hidden = false;
    let _ = plan.apply_subqueries(|sub| {
        hidden |= reads_protected(sub, scope);
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    if hidden {
        return Err(refuse(
            "this subquery over a protected dataset cannot be checked; write it as a join",
        ));
    }
    match plan {
        LogicalPlan::TableScan(scan) => {
            let table = scan.table_name.table();
            let Some(p) = scope.protected.get(table) else {
                return Ok(Facts {
                    cols: vec![Lin::default(); scan.projected_schema.fields().len()],
                    protected: false,
                    aggregations: 0,
                });
            };
            let cols = scan
                .projected_schema
                .fields()
                .iter()
                .map(|f| {
                    let class = if f.name() == ENTITY {
                        Some(ColumnClass::DirectIdentifier)
                    } else {
                        scope.class(table, f.name())
                    };
                    Lin {
                        direct: p.contains(f.name()),
                        tainted: false,
                        level: class_level(class),
                        key: scope.key_only.get(table).is_some_and(|k| k.contains(f.name())),
                        // Only a protected dataset's entities are counted; a lookup
                        // table's "entity" column says nothing about them.
                        entity: match scope.entities.get(table) {
                            Some((e, pseudonym)) if e == f.name() && !scope.unrestricted.contains(table) => {
                                if *pseudonym {
                                    EntityCol::Pseudonym
                                } else {
                                    EntityCol::Plain
                                }
                            }
                            _ => EntityCol::No,
                        },
                        conditional: false,
                        written: false,
                    }
                })
                .collect();
            // Only filters on pass-through, non-aggregate-only columns are pushed
            // into a policy table (see PolicyTable); check again, deny by default.
            for f in &scan.filters {
                for c in f.column_refs() {
                    if p.contains(&c.name) || c.name == ENTITY {
                        return Err(QueryError::Internal(
                            "a filter on a protected column was pushed into a policy table".into(),
                        ));
                    }
                }
            }
            Ok(Facts {
                cols,
                protected: !scope.unrestricted.contains(table),
                aggregations: 0,
            })
        }
        LogicalPlan::Projection(p) => {
            let input = analyze(&p.input, scope)?;
            let mut cols = Vec::new();
            for e in &p.expr {
                if let Expr::Alias(a) = e
                    && let Expr::Column(c) = unalias(e)
                {
                    keeps_hidden_name(&c.name, Some(&a.name))?;
                }
                let l = match unalias(e) {
                    Expr::Column(c) => lineage(c, p.input.schema(), &input.cols)?,
                    other => refs(other, p.input.schema(), &input.cols)?,
                };
                cols.push(l);
            }
            Ok(Facts { cols, ..input })
        }
        LogicalPlan::Filter(f) => {
            let input = analyze(&f.input, scope)?;
            if refs(&f.predicate, f.input.schema(), &input.cols)?.raw() {
                return Err(refuse(
                    "aggregate-only columns cannot be used in WHERE or HAVING on raw values",
                ));
            }
            Ok(input)
        }
        LogicalPlan::SubqueryAlias(a) => analyze(&a.input, scope),
        LogicalPlan::Sort(s) => {
            let input = analyze(&s.input, scope)?;
            for e in &s.expr {
                if refs(&e.expr, s.input.schema(), &input.cols)?.raw() {
                    return Err(refuse("aggregate-only columns cannot be used in ORDER BY"));
                }
            }
            Ok(input)
        }
        LogicalPlan::Limit(l) => analyze(&l.input, scope),
        LogicalPlan::Aggregate(a) => {
            let input = analyze(&a.input, scope)?;
            if input.protected && a.group_expr.iter().any(|g| matches!(g, Expr::GroupingSet(_))) {
                return Err(refuse(
                    "GROUPING SETS, ROLLUP and CUBE over a protected dataset are not supported: their \
                     subtotals are groups the small-group rule would have to check one by one; run one \
                     GROUP BY per grouping",
                ));
            }
            if input.protected && narrows_rows(&a.input, scope) {
                return Err(refuse(
                    "LIMIT, OFFSET or a sample below an aggregation of a protected dataset lets the rows \
                     chosen decide the result (the difference of two limits is one row); aggregate every row",
                ));
            }
            let mut cols = Vec::new();
            for g in &a.group_expr {
                let l = refs(g, a.input.schema(), &input.cols)?;
                if l.raw() {
                    return Err(refuse("GROUP BY cannot use an aggregate-only column"));
                }
                // (Over an aggregation of protected data the one-level rule refuses it anyway.)
                if input.protected && input.aggregations == 0 && l.written {
                    return Err(QueryError::refused(
                        GROUP_KEY_RULE,
                        format!("GROUP BY {g} could carry a value the job wrote: {GROUP_KEY_FORMS}"),
                    ));
                }
                // A group key stays identifying; otherwise it is an aggregate's key.
                let level = if l.level == Label::Identifying {
                    l.level
                } else {
                    l.level.min(Label::Aggregate)
                };
                cols.push(Lin {
                    level,
                    written: l.written,
                    ..Lin::default()
                });
            }
            for e in &a.aggr_expr {
                check_aggregate(unalias(e), &a.input, &input.cols, scope)?;
                let l = refs(e, a.input.schema(), &input.cols)?;
                // A statistic is an aggregate; an aggregate that returns its
                // inputs (min, max, first/last value, array and string
                // aggregation, percentiles) keeps the label of what it copies.
                let level = if !input.protected {
                    l.level
                } else if statistical(unalias(e)) {
                    Label::Aggregate.max(l.level.min(Label::Aggregate))
                } else {
                    Label::Aggregate.max(l.level)
                };
                // A value an aggregation computed (`max` of a VALUES list, a
                // count) is no value of the data: never a key further up.
                cols.push(Lin {
                    level,
                    written: true,
                    ..Lin::default()
                });
            }
            let aggregations = input.aggregations + usize::from(input.protected);
            Ok(Facts {
                cols,
                protected: input.protected,
                aggregations,
            })
        }
        LogicalPlan::Join(j) => analyze_join(j, analyze(&j.left, scope)?, analyze(&j.right, scope)?, scope),
        LogicalPlan::Window(w) => {
            let input = analyze(&w.input, scope)?;
            if input.protected && input.aggregations == 0 {
                // A window over rows is an aggregate no small-group rule sees.
                return Err(refuse(
                    "window functions over the rows of a protected dataset are not allowed; \
                     aggregate first (GROUP BY) and apply the window to the groups",
                ));
            }
            let mut cols = input.cols.clone();
            for e in &w.window_expr {
                let l = refs(e, w.input.schema(), &input.cols)?;
                cols.push(Lin {
                    tainted: l.raw(),
                    level: l.level,
                    written: true,
                    ..Lin::default()
                });
            }
            Ok(Facts { cols, ..input })
        }
        LogicalPlan::EmptyRelation(_) | LogicalPlan::Values(_) => Ok(Facts {
            cols: vec![
                Lin {
                    written: true,
                    ..Lin::default()
                };
                plan.schema().fields().len()
            ],
            protected: false,
            aggregations: 0,
        }),
        other => {
            let mut protected = false;
            let mut level = Label::Public;
            let mut written = false;
            let out = other.schema().fields();
            for i in other.inputs() {
                let f = analyze(i, scope)?;
                protected |= f.protected;
                for (at, (l, field)) in f.cols.iter().zip(i.schema().fields()).enumerate() {
                    if l.key {
                        return Err(refuse_key(field.name()));
                    }
                    // A union names its columns after its first input.
                    keeps_hidden_name(field.name(), out.get(at).map(|o| o.name().as_str()))?;
                    level = level.max(l.level);
                    written |= l.written;
                }
            }
            if protected {
                return Err(refuse(format!(
                    "{} over a protected dataset is not supported yet; aggregate each dataset on its own",
                    other
                        .display()
                        .to_string()
                        .split(':')
                        .next()
                        .unwrap_or("this operation")
                )));
            }
            // Over unrestricted datasets: every output column carries the most
            // revealing level of any input column (labels only go up).
            Ok(Facts {
                cols: vec![
                    Lin {
                        level,
                        written,
                        ..Lin::default()
                    };
                    other.schema().fields().len()
                ],
                protected: false,
                aggregations: 0,
            })
        }
    }
}

/// Refuses a hidden column coming out under another name (`to`): hidden
/// columns are dropped by name where the job's result leaves the host, so
/// renamed (by an alias, or by position in a union) they would reach the job.
fn keeps_hidden_name(from: &str, to: Option<&str>) -> Result<(), QueryError> {
    if crate::hidden::reserved(from) && to != Some(from) {
        return Err(refuse("internal columns cannot be used"));
    }
    Ok(())
}

/// Aggregates whose result is rows' own values rather than a figure of the group.
const LISTING: [&str; 5] = ["array_agg", "string_agg", "first_value", "last_value", "nth_value"];

pub(super) fn check_aggregate(
    e: &Expr,
    input: &LogicalPlan,
    cols: &[Lin],
    scope: &QueryScope,
) -> Result<(), QueryError> {
    let Expr::AggregateFunction(AggregateFunction { func, params }) = e else {
        return if refs(e, input.schema(), cols)?.raw() {
            Err(refuse("aggregate-only columns must be aggregated"))
        } else {
            Ok(())
        };
    };
    let mut touches = false;
    for arg in &params.args {
        let l = refs(arg, input.schema(), cols)?;
        if l.raw() {
            touches = true;
            // Plain: the column itself, perhaps widened by a cast that cannot fail
            // (a cast that can fail answers, by failing, a question about a value
            // before any group is suppressed).
            let column = match unalias(arg) {
                Expr::Column(c) => Some(c),
                Expr::Cast(c) if widening(c.field.data_type()) => match c.expr.as_ref() {
                    Expr::Column(c) => Some(c),
                    _ => None,
                },
                _ => None,
            };
            let Some(column) = column else {
                return Err(refuse(format!(
                    "the argument of {}() must be an aggregate-only column itself (or widened to \
                     Int64, Float64 or a wide decimal), not an expression of one",
                    func.name()
                )));
            };
            // ... and the column itself, not one a subquery computed from it.
            if !lineage(column, input.schema(), cols)?.direct {
                return Err(refuse(format!(
                    "the argument of {}() is computed from an aggregate-only column below; \
                     aggregate the column itself",
                    func.name()
                )));
            }
        }
    }
    // A condition inside the argument (`count(CASE …)`, `count(NULLIF(…))`,
    // `sum(CAST(age > 60 AS INT))`, here or in a subquery below) selects
    // rows as a FILTER does: refused over protected data, like FILTER.
    if reads_protected(input, scope) {
        for arg in &params.args {
            if refs(arg, input.schema(), cols)?.conditional {
                return Err(refuse(format!(
                    "the argument of {}() over a protected dataset depends on a condition (CASE, NULLIF, \
                     COALESCE, a comparison, a NULL): it selects rows as a FILTER would, so the cell would \
                     cover fewer entities than its group; filter with WHERE or group with GROUP BY instead",
                    func.name()
                )));
            }
        }
    }
    // A FILTER makes a cell of fewer entities than its group, which the
    // small-group rule counts whole: over protected data it is refused, and
    // an ORDER BY may not rank rows by an aggregate-only value.
    if params.filter.is_some() && reads_protected(input, scope) {
        return Err(refuse(format!(
            "{}() cannot have a FILTER over a protected dataset: the filtered cell would cover fewer \
             entities than the group the small-group rule counts; filter with WHERE instead",
            func.name()
        )));
    }
    // Aggregates that list their rows' own values, or pick one row's by the
    // order rows are stored in, make a cell of each value: a list of a
    // group's values is the count of each value in the group, uncounted by
    // the small-group rule, and the stored order (an entity's hidden key,
    // for datasets keyed by it) is the same in every dataset.
    if LISTING.contains(&func.name().to_ascii_lowercase().as_str()) && reads_protected(input, scope) {
        return Err(refuse(format!(
            "{}() over a protected dataset lists rows' own values (or picks one by their stored \
             order): each value would be a cell the small-group rule never counts; count them with \
             GROUP BY instead",
            func.name()
        )));
    }
    for o in &params.order_by {
        if refs(&o.expr, input.schema(), cols)?.raw() {
            return Err(refuse(format!(
                "{}() cannot be ordered by an aggregate-only column",
                func.name()
            )));
        }
    }
    if !touches {
        return Ok(());
    }
    let name = func.name().to_ascii_lowercase();
    let canonical = match name.as_str() {
        "count" if params.distinct => "count_distinct",
        "var" | "var_samp" => "variance",
        "stddev_samp" => "stddev",
        "var_pop" => "variance_pop",
        "mean" => "avg",
        other => other,
    };
    if !scope.allowed_aggregates.iter().any(|a| a == canonical) {
        return Err(refuse(format!(
            "{name}() is not allowed on aggregate-only columns (allowed: {})",
            scope.allowed_aggregates.join(", ")
        )));
    }
    if params.filter.is_some() || !params.order_by.is_empty() {
        return Err(refuse(format!(
            "{name}() on an aggregate-only column cannot have FILTER or ORDER BY"
        )));
    }
    // The dominance and p% rules judge each person's total over all their
    // rows; a sum or mean of the distinct values is not made of those.
    if params.distinct && canonical != "count_distinct" {
        return Err(refuse(format!(
            "{name}(DISTINCT …) is not allowed on aggregate-only columns: the checks judge each \
             person's total over all their rows (count(DISTINCT …) is allowed)"
        )));
    }
    Ok(())
}

/// Whether the rows reaching an aggregation were narrowed by a limit, an
/// offset or a sample over a protected dataset: then which rows were chosen,
/// not the group, decides the result. Inner aggregations end the walk (they
/// are refused over protected data on their own).
fn narrows_rows(plan: &LogicalPlan, scope: &QueryScope) -> bool {
    let here = match plan {
        LogicalPlan::Limit(_) => true,
        LogicalPlan::Sort(s) => s.fetch.is_some(),
        LogicalPlan::TableScan(t) => t.fetch.is_some(),
        LogicalPlan::Aggregate(_) => return false,
        _ => false,
    };
    if here && reads_protected(plan, scope) {
        return true;
    }
    plan.inputs().into_iter().any(|i| narrows_rows(i, scope))
}

/// Casts that cannot fail on any value of a numeric column: to the widest
/// integer, to a double, or to a decimal with room for twenty integer digits.
fn widening(to: &DataType) -> bool {
    match to {
        DataType::Int64 | DataType::Float64 | DataType::Decimal256(_, _) => true,
        DataType::Decimal128(p, s) => i16::from(*p) - i16::from(*s) >= 20,
        _ => false,
    }
}

/// Whether an aggregate computes a statistic of its group rather than
/// returning one of its input values.
fn statistical(e: &Expr) -> bool {
    const STATISTICS: [&str; 12] = [
        "count",
        "sum",
        "avg",
        "mean",
        "var",
        "var_samp",
        "var_pop",
        "variance",
        "variance_pop",
        "stddev",
        "stddev_samp",
        "stddev_pop",
    ];
    match e {
        Expr::AggregateFunction(AggregateFunction { func, .. }) => {
            STATISTICS.contains(&func.name().to_ascii_lowercase().as_str())
        }
        _ => false,
    }
}
