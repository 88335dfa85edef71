//! The tables a job emits, collected under the output cap while it runs.
//! Nothing here is trusted: names are checked, IPC is decoded by the host,
//! and a table keeps the schema it was first emitted with.

use crate::error::JobError;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::record_batch::RecordBatch;
use inland_policies::{Name, NameKind};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Output tables one job may emit.
const MAX_TABLES: usize = 64;

/// Checks an output name: it becomes part of a file name and an id.
pub fn validate_output_name(name: &str) -> Result<(), String> {
    Name::parse(NameKind::Output, name)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The schema a table is kept with: the job's column names and types and
/// nothing else. Metadata (on the schema or any field), a list's item name
/// and time-zone names are text the job chose that no check or reviewer
/// reads, carried into the exported Parquet: a channel out. Metadata and
/// item names are dropped; types that carry names (time zones, structs,
/// maps, unions) are refused.
pub fn plain_schema(schema: &Schema) -> Result<SchemaRef, String> {
    let fields: Result<Vec<Field>, String> = schema
        .fields()
        .iter()
        .map(|f| {
            Ok(Field::new(
                f.name(),
                plain_type(f.name(), f.data_type())?,
                f.is_nullable(),
            ))
        })
        .collect();
    Ok(Arc::new(Schema::new(fields?)))
}

fn plain_type(column: &str, t: &DataType) -> Result<DataType, String> {
    let refused = |why: &str| Err(format!("column `{column}` is {t}: {why}"));
    Ok(match t {
        DataType::Timestamp(_, Some(_)) => return refused("store timestamps without a time zone (as UTC)"),
        DataType::List(item) => DataType::List(Arc::new(Field::new(
            "item",
            plain_type(column, item.data_type())?,
            item.is_nullable(),
        ))),
        DataType::LargeList(item) => DataType::LargeList(Arc::new(Field::new(
            "item",
            plain_type(column, item.data_type())?,
            item.is_nullable(),
        ))),
        DataType::Struct(_)
        | DataType::Map(..)
        | DataType::Union(..)
        | DataType::Dictionary(..)
        | DataType::RunEndEncoded(..)
        | DataType::FixedSizeList(..)
        | DataType::ListView(_)
        | DataType::LargeListView(_) => {
            return refused("outputs hold flat columns: numbers, text, dates, times and lists of them");
        }
        other => other.clone(),
    })
}

/// `batch` under the plain `schema` (lists cast to the plain item name).
fn plain_batch(schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch, String> {
    let columns: Result<Vec<_>, String> = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            let c = if c.data_type() == f.data_type() {
                c.clone()
            } else {
                arrow::compute::cast(c, f.data_type()).map_err(|e| e.to_string())?
            };
            Ok(canonical_floats(c))
        })
        .collect();
    RecordBatch::try_new(schema.clone(), columns?).map_err(|e| e.to_string())
}

/// Floats as a reviewer reads them: every NaN the one NaN and -0.0 as 0.
/// A NaN's payload and a zero's sign are bits no check or reviewer sees
/// that the exported Parquet would otherwise carry out.
fn canonical_floats(c: arrow::array::ArrayRef) -> arrow::array::ArrayRef {
    use arrow::array::AsArray;
    use arrow::datatypes::{Float32Type, Float64Type};
    match c.data_type() {
        DataType::Float64 => Arc::new(c.as_primitive::<Float64Type>().unary::<_, Float64Type>(|v| {
            if v.is_nan() {
                f64::NAN
            } else if v == 0.0 {
                0.0
            } else {
                v
            }
        })),
        DataType::Float32 => Arc::new(c.as_primitive::<Float32Type>().unary::<_, Float32Type>(|v| {
            if v.is_nan() {
                f32::NAN
            } else if v == 0.0 {
                0.0
            } else {
                v
            }
        })),
        _ => c,
    }
}

/// One emitted table: its schema and every batch emitted under its name.
pub struct Collected {
    /// The columns.
    pub schema: SchemaRef,
    /// The rows, batch by batch.
    pub batches: Vec<RecordBatch>,
}

/// The tables a running job has emitted so far, and the bytes it has used.
pub struct OutputCollector {
    limit: u64,
    used: u64,
    tables: BTreeMap<String, Collected>,
}

impl OutputCollector {
    /// A collector that stops the job once it has emitted `limit` bytes.
    pub fn new(limit: u64) -> Self {
        OutputCollector {
            limit,
            used: 0,
            tables: BTreeMap::new(),
        }
    }

    /// Takes one emitted IPC stream. The outer error stops the job (the output
    /// cap); the inner one is returned to the job (a bad name or table).
    pub fn add(&mut self, name: &str, ipc: &[u8]) -> Result<Result<(), String>, JobError> {
        self.charge(ipc.len())?;
        Ok(self.add_uncharged(name, ipc))
    }

    /// Counts `bytes` a job sent against the output cap; past it, the job stops.
    pub fn charge(&mut self, bytes: usize) -> Result<(), JobError> {
        self.used = self.used.saturating_add(bytes as u64);
        if self.used > self.limit {
            return Err(JobError::OutputLimit {
                limit_bytes: self.limit,
            });
        }
        Ok(())
    }

    /// Takes one IPC stream the host built from what the job sent, which
    /// was charged already; an error is returned to the job.
    pub fn add_uncharged(&mut self, name: &str, ipc: &[u8]) -> Result<(), String> {
        validate_output_name(name)?;
        let reader = match StreamReader::try_new(std::io::Cursor::new(ipc), None) {
            Ok(r) => r,
            Err(e) => return Err(format!("output `{name}` is not an Arrow IPC stream: {e}")),
        };
        let schema = match plain_schema(&reader.schema()) {
            Ok(s) => s,
            Err(m) => return Err(format!("output `{name}`: {m}")),
        };
        let mut batches = Vec::new();
        for b in reader {
            let plain = b.map_err(|e| e.to_string()).and_then(|b| plain_batch(&schema, &b));
            match plain {
                Ok(b) => batches.push(b),
                Err(e) => return Err(format!("output `{name}` has a malformed batch: {e}")),
            }
        }
        if !self.tables.contains_key(name) && self.tables.len() >= MAX_TABLES {
            return Err(format!("a job may emit at most {MAX_TABLES} output tables"));
        }
        let entry = self.tables.entry(name.to_string()).or_insert_with(|| Collected {
            schema: schema.clone(),
            batches: Vec::new(),
        });
        if entry.schema.fields() != schema.fields() {
            return Err(format!("output `{name}` was emitted before with a different schema"));
        }
        entry.batches.extend(batches);
        Ok(())
    }

    /// Whether the job emitted nothing.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
    /// How many tables it emitted.
    pub fn len(&self) -> usize {
        self.tables.len()
    }
}

impl IntoIterator for OutputCollector {
    type Item = (String, Collected);
    type IntoIter = std::collections::btree_map::IntoIter<String, Collected>;

    /// The tables in name order.
    fn into_iter(self) -> Self::IntoIter {
        self.tables.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, ListArray, StringArray, TimestampSecondArray};
    use arrow::datatypes::Int64Type;
    use std::collections::HashMap;

    fn ipc(batch: &RecordBatch) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut out, &batch.schema()).unwrap();
        w.write(batch).unwrap();
        w.finish().unwrap();
        drop(w);
        out
    }

    /// A NaN's payload and a zero's sign would carry bits out that the
    /// review shows as `NaN` and `0`: every NaN is the one NaN, -0.0 is 0.
    #[test]
    fn float_bits_no_reviewer_sees_are_not_kept() {
        let hidden = f64::from_bits(0x7ff8_0000_dead_beef);
        let values = arrow::array::Float64Array::from(vec![hidden, -0.0, 1.5]);
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(values) as ArrayRef]).unwrap();
        let mut c = OutputCollector::new(1 << 20);
        c.add("t", &ipc(&batch)).unwrap().unwrap();
        let kept = c.tables.get("t").unwrap().batches[0].clone();
        let x = kept
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap();
        assert_eq!(x.value(0).to_bits(), f64::NAN.to_bits());
        assert_eq!(x.value(1).to_bits(), 0.0f64.to_bits());
        assert_eq!(x.value(2), 1.5);
    }

    /// A column's metadata, the schema's and a list's item name are text the
    /// job chose after reading data: none of it is kept.
    #[test]
    fn metadata_and_item_names_a_job_wrote_are_not_kept() {
        let secret: HashMap<String, String> = [("x".to_string(), "4711.25 income of one person".to_string())].into();
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![Some(vec![Some(1)])]);
        let item = Field::new("planted-4711", DataType::Int64, true);
        let list_type = DataType::List(Arc::new(item));
        let list = arrow::compute::cast(&list, &list_type).unwrap();
        let schema = Schema::new(vec![
            Field::new("n", DataType::Int64, false).with_metadata(secret.clone()),
            Field::new("l", list_type, true),
        ])
        .with_metadata(secret);
        let columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![3])), list];
        let batch = RecordBatch::try_new(Arc::new(schema), columns).unwrap();
        let mut c = OutputCollector::new(1 << 20);
        assert_eq!(c.add("t", &ipc(&batch)).unwrap(), Ok(()));
        let (_, table) = c.into_iter().next().unwrap();
        let kept = format!("{:?} {:?}", table.schema, table.batches[0].schema());
        assert!(!kept.contains("4711"), "{kept}");
        assert!(table.schema.metadata().is_empty());
        assert_eq!(table.batches[0].schema(), table.schema);
    }

    #[test]
    fn types_that_carry_names_are_refused() {
        let tz = TimestampSecondArray::from(vec![1]).with_timezone("Asia/Shanghai");
        let batch = RecordBatch::try_from_iter(vec![("t", Arc::new(tz) as ArrayRef)]).unwrap();
        let mut c = OutputCollector::new(1 << 20);
        let refused = c.add("t", &ipc(&batch)).unwrap().unwrap_err();
        assert!(refused.contains("time zone"), "{refused}");
        let s = arrow::array::StructArray::from(vec![(
            Arc::new(Field::new("planted", DataType::Utf8, false)),
            Arc::new(StringArray::from(vec!["a"])) as ArrayRef,
        )]);
        let batch = RecordBatch::try_from_iter(vec![("s", Arc::new(s) as ArrayRef)]).unwrap();
        let refused = c.add("s", &ipc(&batch)).unwrap().unwrap_err();
        assert!(refused.contains("flat columns"), "{refused}");
        assert!(c.is_empty());
    }
}
