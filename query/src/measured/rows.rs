//! What both forms of the measure (listing every entity, `measured`;
//! folding them in entity order, `measured::ordered`) do alike with a
//! batch's rows: read the arguments, skip the rows a filter drops, and count
//! per group the rows no entity's sum holds. They differ only in what an
//! entity's row does to its group ([`Rows`]).

use crate::contrib::{entity_keys, selected};
use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, UInt64Array};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{Result as DfResult, internal_err};
use std::sync::Arc;

/// A group's rows that no entity's sum holds: negative and missing values,
/// and the rows without an entity, which count as one shared contributor
/// (as in `inland_contributions`) but as no entity (as in `inland_entities`).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct RowCounts {
    pub(super) negatives: u64,
    pub(super) missing: u64,
    unknown_rows: u64,
    unknown_sum: f64,
}

impl RowCounts {
    /// Counts one row; gives its entity and what it adds to the entity's
    /// sum, or `None` for a row without an entity.
    fn row(&mut self, key: Option<u64>, v: Option<f64>) -> Option<(u64, f64)> {
        match v {
            None => self.missing += 1,
            Some(v) => self.negatives += u64::from(v < 0.0),
        }
        match (key, v) {
            // An entity whose rows all miss the value still counts as one.
            (Some(k), v) => Some((k, v.unwrap_or(0.0))),
            (None, Some(v)) => {
                self.unknown_rows += 1;
                self.unknown_sum += v;
                None
            }
            (None, None) => None,
        }
    }

    /// The rows without an entity as one contribution, if there are any.
    pub(super) fn unknown(&self) -> Option<f64> {
        (self.unknown_rows > 0).then_some(self.unknown_sum)
    }

    /// Adds the counts of another state of the same group.
    fn merge(&mut self, other: RowCounts) {
        self.negatives += other.negatives;
        self.missing += other.missing;
        self.unknown_rows += other.unknown_rows;
        self.unknown_sum += other.unknown_sum;
    }
}

/// The partial state's last four columns: the groups' row counts.
pub(super) fn count_fields() -> [FieldRef; 4] {
    let f = |name: &str, t: DataType| Arc::new(Field::new(name, t, true));
    [
        f("negatives", DataType::UInt64),
        f("missing", DataType::UInt64),
        f("unknown_rows", DataType::UInt64),
        f("unknown_sum", DataType::Float64),
    ]
}

/// The groups' row counts as those four columns.
pub(super) fn count_columns(counts: &[RowCounts]) -> [ArrayRef; 4] {
    let ints = |f: fn(&RowCounts) -> u64| Arc::new(counts.iter().map(f).collect::<UInt64Array>()) as ArrayRef;
    [
        ints(|c| c.negatives),
        ints(|c| c.missing),
        ints(|c| c.unknown_rows),
        Arc::new(counts.iter().map(|c| c.unknown_sum).collect::<Float64Array>()),
    ]
}

/// Those four columns of a partial state, read back to be merged.
pub(super) struct CountColumns<'a> {
    ints: [&'a UInt64Array; 3],
    unknown_sum: &'a Float64Array,
}

impl<'a> CountColumns<'a> {
    /// `name` names the function in the error for a state not its own.
    pub(super) fn of(columns: [&'a ArrayRef; 4], name: &str) -> DfResult<Self> {
        let [negatives, missing, unknown_rows, unknown_sum] = columns;
        let ints = [negatives, missing, unknown_rows].map(|c| c.as_primitive_opt::<UInt64Type>());
        let ([Some(a), Some(b), Some(c)], Some(unknown_sum)) = (ints, unknown_sum.as_primitive_opt::<Float64Type>())
        else {
            return internal_err!("{name}: unexpected state");
        };
        Ok(CountColumns {
            ints: [a, b, c],
            unknown_sum,
        })
    }

    /// Adds one row of the state to a group's counts.
    pub(super) fn merge_into(&self, row: usize, counts: &mut RowCounts) {
        let [negatives, missing, unknown_rows] = self.ints.map(|c| c.value(row));
        counts.merge(RowCounts {
            negatives,
            missing,
            unknown_rows,
            unknown_sum: self.unknown_sum.value(row),
        });
    }
}

/// What one form of the measure does with a batch's rows.
pub(super) trait Rows {
    /// Makes room for `n` groups.
    fn resize(&mut self, n: usize);
    /// A group's row counts, `None` for a group out of range.
    fn counts(&mut self, group: usize) -> Option<&mut RowCounts>;
    /// One row of an entity (its value 0 when missing), already counted.
    fn entity(&mut self, group: usize, key: u64, v: f64) -> DfResult<()>;
    /// A batch with every row selected, valued and keyed, in one pass
    /// without per-row checks; it counts its negative values itself.
    fn plain(&mut self, values: &[f64], keys: &[u64], groups: &[usize]) -> DfResult<()>;
}

/// `update_batch` of either form: `values` are the measure's two
/// arguments (value, entity key); `name` names the function in errors.
pub(super) fn update(
    acc: &mut impl Rows,
    name: &str,
    values: &[ArrayRef],
    group_indices: &[usize],
    opt_filter: Option<&BooleanArray>,
    total_num_groups: usize,
) -> DfResult<()> {
    let [value, entity] = values else {
        return internal_err!("{name} takes two arguments");
    };
    let value = arrow::compute::cast(value, &DataType::Float64)?;
    let value = value.as_primitive::<Float64Type>();
    let keys = entity_keys(entity)?;
    let rows = group_indices.len();
    if value.len() != rows || keys.len() != rows || opt_filter.is_some_and(|f| f.len() != rows) {
        return internal_err!("{name}: arguments and groups of unequal lengths");
    }
    acc.resize(total_num_groups);
    if opt_filter.is_none() && value.null_count() == 0 && keys.null_count() == 0 {
        return acc.plain(value.values(), keys.values(), group_indices);
    }
    for (row, &group) in group_indices.iter().enumerate() {
        if !selected(opt_filter, row) {
            continue;
        }
        let Some(counts) = acc.counts(group) else {
            return internal_err!("{name}: group {group} out of range");
        };
        let key = keys.is_valid(row).then(|| keys.value(row));
        let v = value.is_valid(row).then(|| value.value(row));
        if let Some((key, v)) = counts.row(key, v) {
            acc.entity(group, key, v)?;
        }
    }
    Ok(())
}
