//! Which columns of a dataset hold every value once and are never null,
//! found as it is registered. An entity column with this property lets
//! the host count a group's entities by counting its rows (see
//! `row_contrib`); a column that is not proven unique gets the general,
//! per-entity path, so a wrong "no" only costs time and a "yes" is never wrong.
//!
//! The proof reads the rows once, batch by batch, in bounded memory: a
//! column's value hashes go into a set until it holds its share of
//! [`IN_MEMORY`]
//! (a column with few distinct values repeats long before and drops out);
//! after that they are appended to a file of the column's own. At the end
//! each file is read in passes, one range of hash values at a time, at most
//! [`PASS_BYTES`] of hashes sorted and scanned for a repeat per pass.

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use std::collections::HashSet;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

/// Hashes all columns together keep in memory (about 40 MiB); each column
/// gets its share, at least [`MIN_IN_MEMORY`], before it spills.
const IN_MEMORY: usize = 1 << 21;
const MIN_IN_MEMORY: usize = 1 << 14;
/// Hashes sorted at once when a spilled column is checked (64 MiB; 1 MiB
/// in tests, so that they check several passes).
#[cfg(not(test))]
const PASS_BYTES: u64 = 64 << 20;
#[cfg(test)]
const PASS_BYTES: u64 = 1 << 20;

enum Column {
    /// Still a candidate; its hashes so far.
    Set(HashSet<u64>),
    /// Still a candidate, its hashes in a file, and how many.
    Spilled(BufWriter<tempfile::NamedTempFile>, u64),
    /// Holds a null or a repeat.
    Out,
}

/// Follows every column's candidacy as batches stream past.
pub(crate) struct UniqueTracker {
    names: Vec<String>,
    columns: Vec<Column>,
    hashes: Vec<u64>,
    /// Hashes one column keeps in memory before it spills.
    per_column: usize,
    state: foldhash::quality::FixedState,
    spill_dir: std::path::PathBuf,
}

fn spill_error(e: std::io::Error) -> String {
    format!("writing the uniqueness proof's spill files: {e}")
}

impl UniqueTracker {
    /// A tracker for `schema`'s columns that spills into `spill_dir`.
    pub(crate) fn new(schema: &Schema, spill_dir: &Path) -> Self {
        UniqueTracker {
            names: schema.fields().iter().map(|f| f.name().clone()).collect(),
            columns: schema.fields().iter().map(|_| Column::Set(HashSet::new())).collect(),
            hashes: Vec::new(),
            per_column: (IN_MEMORY / schema.fields().len().max(1)).max(MIN_IN_MEMORY),
            // Equal values always hash alike, so a repeat is never missed;
            // distinct values that collide only make a column not unique.
            state: foldhash::quality::FixedState::with_seed(0x1a7d_5eed),
            spill_dir: spill_dir.to_path_buf(),
        }
    }

    /// Takes the next batch's values.
    pub(crate) fn observe(&mut self, batch: &RecordBatch) -> Result<(), String> {
        for (i, column) in self.columns.iter_mut().enumerate() {
            if matches!(column, Column::Out) {
                continue;
            }
            let array = batch.column(i);
            if array.logical_null_count() > 0 {
                *column = Column::Out;
                continue;
            }
            self.hashes.clear();
            self.hashes.resize(batch.num_rows(), 0);
            if datafusion::common::hash_utils::create_hashes([array], &self.state, &mut self.hashes).is_err() {
                *column = Column::Out;
                continue;
            }
            if let Column::Set(seen) = column {
                if self.hashes.iter().any(|h| !seen.insert(*h)) {
                    *column = Column::Out;
                    continue;
                }
                if seen.len() > self.per_column {
                    let file = tempfile::Builder::new()
                        .prefix(".unique-")
                        .tempfile_in(&self.spill_dir)
                        .map_err(spill_error)?;
                    let mut file = BufWriter::new(file);
                    let count = seen.len() as u64;
                    for h in seen.drain() {
                        file.write_all(&h.to_le_bytes()).map_err(spill_error)?;
                    }
                    *column = Column::Spilled(file, count);
                }
                continue;
            }
            if let Column::Spilled(file, count) = column {
                for h in &self.hashes {
                    file.write_all(&h.to_le_bytes()).map_err(spill_error)?;
                }
                *count += self.hashes.len() as u64;
            }
        }
        Ok(())
    }

    /// The names of the columns whose values were all present and distinct.
    pub(crate) fn finish(self) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for (name, column) in self.names.into_iter().zip(self.columns) {
            let unique = match column {
                Column::Out => false,
                Column::Set(_) => true,
                Column::Spilled(file, count) => {
                    let file = file.into_inner().map_err(|e| spill_error(e.into_error()))?;
                    !has_repeat(file.path(), count).map_err(spill_error)?
                }
            };
            if unique {
                out.push(name);
            }
        }
        Ok(out)
    }
}

/// Whether a file of `count` hashes holds one twice. Each pass keeps the
/// hashes of one range of values (equal hashes fall in the same range),
/// sorts them, and looks for neighbours that are equal.
fn has_repeat(path: &Path, count: u64) -> std::io::Result<bool> {
    let passes = (count.saturating_mul(8)).div_ceil(PASS_BYTES).max(1);
    // Pass p keeps [p * 2^64 / passes, (p + 1) * 2^64 / passes).
    let bound = |p: u64| ((u128::from(p) << 64) / u128::from(passes)) as u64;
    for pass in 0..passes {
        let low = bound(pass);
        let high = if pass + 1 == passes {
            u64::MAX
        } else {
            bound(pass + 1) - 1
        };
        let mut hashes = Vec::with_capacity((count / passes + count / passes / 8 + 16) as usize);
        let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
        let mut word = [0u8; 8];
        loop {
            match reader.read_exact(&mut word) {
                Ok(()) => {
                    let h = u64::from_le_bytes(word);
                    if (low..=high).contains(&h) {
                        hashes.push(h);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
        }
        hashes.sort_unstable();
        if hashes.windows(2).any(|w| w[0] == w[1]) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn unique(schema: &Schema, batches: &[RecordBatch]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let mut t = UniqueTracker::new(schema, dir.path());
        for b in batches {
            t.observe(b).unwrap();
        }
        t.finish().unwrap()
    }

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
        assert_eq!(unique(&schema, &batches), vec!["id".to_string()]);
    }

    /// Past the in-memory set the proof goes to disk, and a repeat far
    /// apart (first and last row) is still found.
    #[test]
    fn a_repeat_far_apart_in_a_column_too_large_for_memory_is_found() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("distinct", DataType::Int64, false),
            Field::new("last_repeats_first", DataType::Int64, false),
        ]));
        let n = (IN_MEMORY as i64 / 2) * 3;
        let batches: Vec<RecordBatch> = (0..n)
            .step_by(65_536)
            .map(|start| {
                let end = (start + 65_536).min(n);
                let a: Vec<i64> = (start..end).collect();
                let b: Vec<i64> = (start..end).map(|v| if v == n - 1 { 0 } else { v }).collect();
                RecordBatch::try_new(
                    schema.clone(),
                    vec![Arc::new(Int64Array::from(a)), Arc::new(Int64Array::from(b))],
                )
                .unwrap()
            })
            .collect();
        assert_eq!(unique(&schema, &batches), vec!["distinct".to_string()]);
    }
}
