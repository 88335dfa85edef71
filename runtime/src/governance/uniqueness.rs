//! Which columns of a dataset hold every value once and are never null,
//! found when it is registered. An entity column with this property lets
//! the host count a group's entities by counting its rows (see
//! `row_contrib`); a column that is not proven unique gets the general,
//! per-entity path, so a wrong "no" only costs time and a "yes" is never wrong.

use arrow::array::RecordBatch;
use std::collections::HashSet;

/// The names of the columns whose values are all present and distinct.
///
/// Values are compared by a 64-bit hash: equal values always collide, so a
/// duplicate is never missed; two distinct values that collide only make a
/// column count as not unique. Low-cardinality columns stop at their first
/// repeat, so the cost is about one hashing pass over the unique columns.
pub(crate) fn unique_columns(schema: &arrow::datatypes::Schema, batches: &[RecordBatch]) -> Vec<String> {
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let state = foldhash::quality::FixedState::with_seed(0x1a7d_5eed);
    let mut out = Vec::new();
    let mut hashes = Vec::new();
    'columns: for (i, field) in schema.fields().iter().enumerate() {
        if batches.iter().any(|b| b.column(i).logical_null_count() > 0) {
            continue;
        }
        let mut seen: HashSet<u64> = HashSet::with_capacity(rows.min(1 << 16));
        for b in batches {
            hashes.clear();
            hashes.resize(b.num_rows(), 0);
            if datafusion::common::hash_utils::create_hashes([b.column(i)], &state, &mut hashes).is_err() {
                continue 'columns;
            }
            for h in &hashes {
                if !seen.insert(*h) {
                    continue 'columns;
                }
            }
        }
        out.push(field.name().clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn only_columns_without_repeats_or_nulls_across_batches_are_unique() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("district", DataType::Utf8, true),
            Field::new("income", DataType::Int64, true),
            Field::new("repeats_later", DataType::Int64, true),
        ]));
        let batch = |ids: &[&str], districts: &[&str], incomes: Vec<Option<i64>>, later: Vec<i64>| {
            let cols: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(ids.to_vec())),
                Arc::new(StringArray::from(districts.to_vec())),
                Arc::new(Int64Array::from(incomes)),
                Arc::new(Int64Array::from(later)),
            ];
            RecordBatch::try_new(schema.clone(), cols).unwrap()
        };
        let batches = [
            batch(&["a", "b"], &["x", "x"], vec![Some(1), None], vec![1, 2]),
            batch(&["c", "d"], &["y", "z"], vec![Some(2), Some(3)], vec![3, 1]),
        ];
        assert_eq!(unique_columns(&schema, &batches), vec!["id".to_string()]);
    }
}
