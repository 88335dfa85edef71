//! The row interface: a query's batch as rows of cells, and a table the job
//! sends as rows as an Arrow table. For jobs that cannot use Arrow (Python in
//! a component cannot load pyarrow); the host does the converting, so what
//! the job emits meets the same checks as an Arrow table.
//!
//! Rows go to the guest as typed cells, at most [`READ_BUDGET`] bytes a call.
//! Rows come from the guest as one flat JSON buffer, parsed as it streams
//! into column builders: a list of records or strings would let a job point
//! many entries at the same bytes and have the host copy them each time.

use crate::host::bindings::inland::job::host::{Cell, Column};
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    new_null_array,
};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Date32Type, Field, Float64Type, Int64Type, Schema, UInt64Type};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::sync::Arc;

/// Bytes of rows one `next-rows` call hands over (text, plus 32 per cell
/// for the host's own copy); a larger batch is handed over in parts.
pub(crate) const READ_BUDGET: usize = 16 << 20;
/// Columns an emitted table may have.
const MAX_COLUMNS: usize = 1024;
/// Longest column name or type name accepted.
const MAX_NAME_BYTES: usize = 256;
/// Text one column of one `emit-rows` call may hold (Arrow's 32-bit offsets).
const MAX_TEXT_BYTES: usize = 1 << 30;

/// What the row interface carries, by the cell each type becomes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Null,
    Boolean,
    Integer,
    Float,
    Text,
    Date,
}

fn kind(data_type: &DataType) -> Option<Kind> {
    use DataType::*;
    Some(match data_type {
        Null => Kind::Null,
        Boolean => Kind::Boolean,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => Kind::Integer,
        Float16 | Float32 | Float64 => Kind::Float,
        Utf8 | LargeUtf8 | Utf8View => Kind::Text,
        Date32 => Kind::Date,
        _ => return None,
    })
}

/// The types a job may declare, by the exact name Arrow prints: nothing the
/// job writes is parsed as a type expression.
fn declared_type(name: &str) -> Option<DataType> {
    use DataType::*;
    Some(match name {
        "Null" => Null,
        "Boolean" => Boolean,
        "Int8" => Int8,
        "Int16" => Int16,
        "Int32" => Int32,
        "Int64" => Int64,
        "UInt8" => UInt8,
        "UInt16" => UInt16,
        "UInt32" => UInt32,
        "UInt64" => UInt64,
        "Float32" => Float32,
        "Float64" => Float64,
        "Utf8" => Utf8,
        "LargeUtf8" => LargeUtf8,
        "Utf8View" => Utf8View,
        "Date32" => Date32,
        _ => return None,
    })
}

fn unsupported(name: &str, data_type: &DataType) -> String {
    format!(
        "column `{name}` is {data_type}, which rows do not carry (they carry booleans, integers, \
         floats, strings and Date32): cast it in the SQL, e.g. to DOUBLE or VARCHAR"
    )
}

fn cast(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, String> {
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(array, to, &options).map_err(|_| format!("a value does not fit {to}"))
}

/// The columns a job that reads rows sees for `schema`.
pub(crate) fn columns(schema: &Schema) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            nullable: f.is_nullable(),
        })
        .collect()
}

/// Checks that rows can carry every column of `schema`, before anything is read.
pub(crate) fn readable(schema: &Schema) -> Result<(), String> {
    for f in schema.fields() {
        let t = match f.data_type() {
            DataType::Dictionary(_, values) => values.as_ref(),
            t => t,
        };
        if kind(t).is_none() {
            return Err(unsupported(f.name(), f.data_type()));
        }
    }
    Ok(())
}

/// The bytes each row of `batch` takes as cells, computed without
/// expanding anything (a dictionary's values are counted per use).
fn row_bytes(batch: &RecordBatch) -> Vec<usize> {
    let mut sizes = vec![32 * batch.num_columns(); batch.num_rows()];
    for array in batch.columns() {
        add_text_bytes(array, &mut sizes);
    }
    sizes
}

fn add_text_bytes(array: &ArrayRef, sizes: &mut [usize]) {
    match array.data_type() {
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            let offsets = a.value_offsets();
            for (i, s) in sizes.iter_mut().enumerate() {
                *s += (offsets[i + 1] - offsets[i]) as usize;
            }
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            let offsets = a.value_offsets();
            for (i, s) in sizes.iter_mut().enumerate() {
                *s += (offsets[i + 1] - offsets[i]) as usize;
            }
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            for (view, s) in a.views().iter().zip(sizes.iter_mut()) {
                *s += (*view as u32) as usize;
            }
        }
        DataType::Dictionary(..) => {
            let Some(dict) = array.as_any_dictionary_opt() else {
                return;
            };
            let mut value_sizes = vec![0usize; dict.values().len()];
            add_text_bytes(dict.values(), &mut value_sizes);
            let keys = dict.normalized_keys();
            for (key, s) in keys.iter().zip(sizes.iter_mut()) {
                *s += value_sizes.get(*key).copied().unwrap_or(0);
            }
        }
        _ => {}
    }
}

/// How many leading rows of `batch` fit one call's budget; 0 when even the
/// first does not.
pub(crate) fn rows_within_budget(batch: &RecordBatch) -> usize {
    let mut total = 0usize;
    for (i, size) in row_bytes(batch).into_iter().enumerate() {
        total = total.saturating_add(size);
        if total > READ_BUDGET {
            return i;
        }
    }
    batch.num_rows()
}

/// One column of a batch as cells.
fn cells(name: &str, array: &ArrayRef) -> Result<Vec<Cell>, String> {
    let data_type = array.data_type();
    if let DataType::Dictionary(_, values) = data_type {
        // Dictionary encoding is the engine's choice, not the job's: read
        // the values (their size was counted against the budget first).
        let plain = cast(array, values).map_err(|_| unsupported(name, data_type))?;
        return cells(name, &plain);
    }
    let kind = kind(data_type).ok_or_else(|| unsupported(name, data_type))?;
    let n = array.len();
    let null = |i: usize| array.is_null(i);
    Ok(match kind {
        Kind::Null => vec![Cell::Null; n],
        Kind::Boolean => {
            let a = array.as_boolean();
            (0..n)
                .map(|i| if null(i) { Cell::Null } else { Cell::Boolean(a.value(i)) })
                .collect()
        }
        Kind::Integer if *data_type == DataType::UInt64 => {
            let a = array.as_primitive::<UInt64Type>();
            (0..n)
                .map(|i| match null(i) {
                    true => Ok(Cell::Null),
                    false => i64::try_from(a.value(i)).map(Cell::Integer).map_err(|_| {
                        format!("column `{name}` holds a UInt64 above 2^63 - 1: cast it in the SQL, e.g. to DOUBLE")
                    }),
                })
                .collect::<Result<_, _>>()?
        }
        Kind::Integer => {
            let wide = cast(array, &DataType::Int64).map_err(|m| format!("column `{name}`: {m}"))?;
            let a = wide.as_primitive::<Int64Type>();
            (0..n)
                .map(|i| if null(i) { Cell::Null } else { Cell::Integer(a.value(i)) })
                .collect()
        }
        Kind::Float => {
            let wide = cast(array, &DataType::Float64).map_err(|m| format!("column `{name}`: {m}"))?;
            let a = wide.as_primitive::<Float64Type>();
            (0..n)
                .map(|i| if null(i) { Cell::Null } else { Cell::Float(a.value(i)) })
                .collect()
        }
        Kind::Text => {
            let wide = cast(array, &DataType::Utf8).map_err(|m| format!("column `{name}`: {m}"))?;
            let a = wide.as_string::<i32>();
            (0..n)
                .map(|i| {
                    if null(i) {
                        Cell::Null
                    } else {
                        Cell::Text(a.value(i).to_string())
                    }
                })
                .collect()
        }
        Kind::Date => {
            let a = array.as_primitive::<Date32Type>();
            (0..n)
                .map(|i| if null(i) { Cell::Null } else { Cell::Date(a.value(i)) })
                .collect()
        }
    })
}

/// A batch as rows of cells (call [`rows_within_budget`] first).
pub(crate) fn to_rows(batch: &RecordBatch) -> Result<Vec<Vec<Cell>>, String> {
    let schema = batch.schema();
    let mut by_column = Vec::with_capacity(batch.num_columns());
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        by_column.push(cells(field.name(), array)?.into_iter());
    }
    Ok((0..batch.num_rows())
        .map(|_| by_column.iter_mut().map(|c| c.next().unwrap_or(Cell::Null)).collect())
        .collect())
}

/// A column the job declared, and the builder its cells go into.
struct Declared {
    name: String,
    data_type: DataType,
    nullable: bool,
    builder: Builder,
}

enum Builder {
    Null(usize),
    Boolean(BooleanBuilder),
    Integer(Int64Builder),
    Float(Float64Builder),
    Text(StringBuilder, usize),
    Date(Date32Builder),
}

impl Declared {
    fn new(name: String, type_name: &str, nullable: bool) -> Result<Declared, String> {
        if name.len() > MAX_NAME_BYTES {
            return Err(format!("a column name is longer than {MAX_NAME_BYTES} bytes"));
        }
        let data_type = declared_type(type_name).ok_or_else(|| {
            let shown: String = type_name.chars().take(40).collect();
            format!(
                "column `{name}`: `{shown}` is not a type rows carry (Boolean, Int8 to Int64, UInt8 to \
                 UInt64, Float32, Float64, Utf8, LargeUtf8, Utf8View, Date32, Null)"
            )
        })?;
        let builder = match kind(&data_type) {
            Some(Kind::Null) | None => Builder::Null(0),
            Some(Kind::Boolean) => Builder::Boolean(BooleanBuilder::new()),
            Some(Kind::Integer) => Builder::Integer(Int64Builder::new()),
            Some(Kind::Float) => Builder::Float(Float64Builder::new()),
            Some(Kind::Text) => Builder::Text(StringBuilder::new(), 0),
            Some(Kind::Date) => Builder::Date(Date32Builder::new()),
        };
        Ok(Declared {
            name,
            data_type,
            nullable,
            builder,
        })
    }

    fn wants(&self) -> &'static str {
        match self.builder {
            Builder::Null(_) => "only null",
            Builder::Boolean(_) => "a boolean",
            Builder::Integer(_) => "an integer",
            Builder::Float(_) => "a finite number",
            Builder::Text(..) => "text",
            Builder::Date(_) => "an integer of days since 1970-01-01",
        }
    }

    fn finish(self) -> Result<ArrayRef, String> {
        let built: ArrayRef = match self.builder {
            Builder::Null(n) => new_null_array(&DataType::Null, n),
            Builder::Boolean(mut b) => Arc::new(b.finish()),
            Builder::Integer(mut b) => Arc::new(b.finish()),
            Builder::Float(mut b) => Arc::new(b.finish()),
            Builder::Text(mut b, _) => Arc::new(b.finish()),
            Builder::Date(mut b) => Arc::new(b.finish()),
        };
        if built.data_type() == &self.data_type {
            Ok(built)
        } else {
            cast(&built, &self.data_type).map_err(|m| format!("column `{}`: {m}", self.name))
        }
    }
}

/// One cell of JSON: what it is, for the column to take or refuse.
enum Json<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(&'a str),
    Other(&'static str),
}

impl Declared {
    fn push(&mut self, row: usize, cell: Json<'_>) -> Result<(), String> {
        let (name, data_type, wants) = (&self.name, &self.data_type, self.wants());
        let wrong = |what: &str| format!("row {row}, column `{name}`: {data_type} takes {wants}, not {what}");
        if matches!(cell, Json::Null) && !self.nullable {
            return Err(format!(
                "row {row}, column `{name}` is declared not nullable but holds null"
            ));
        }
        let what = match &cell {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Int(_) => "an integer",
            Json::Float(_) => "a fractional number",
            Json::Text(_) => "text",
            Json::Other(w) => w,
        };
        let builder = &mut self.builder;
        match (builder, cell) {
            (Builder::Null(n), Json::Null) => *n += 1,
            (Builder::Boolean(b), Json::Null) => b.append_null(),
            (Builder::Boolean(b), Json::Bool(v)) => b.append_value(v),
            (Builder::Integer(b), Json::Null) => b.append_null(),
            (Builder::Integer(b), Json::Int(v)) => b.append_value(v),
            (Builder::Float(b), Json::Null) => b.append_null(),
            (Builder::Float(b), Json::Int(v)) => b.append_value(v as f64),
            // -0.0 is 0: a sign no reviewer sees is not carried out.
            (Builder::Float(b), Json::Float(v)) => b.append_value(if v == 0.0 { 0.0 } else { v }),
            (Builder::Text(b, _), Json::Null) => b.append_null(),
            (Builder::Text(b, bytes), Json::Text(v)) => {
                *bytes += v.len();
                if *bytes > MAX_TEXT_BYTES {
                    return Err(format!(
                        "column `{name}` holds more than {MAX_TEXT_BYTES} bytes of text in one call"
                    ));
                }
                b.append_value(v)
            }
            (Builder::Date(b), Json::Null) => b.append_null(),
            (Builder::Date(b), Json::Int(v)) => match i32::try_from(v) {
                Ok(days) => b.append_value(days),
                Err(_) => return Err(wrong("a day out of range")),
            },
            _ => return Err(wrong(what)),
        }
        Ok(())
    }
}

struct CellSeed<'c> {
    column: &'c mut Declared,
    row: usize,
}

impl<'de> DeserializeSeed<'de> for CellSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CellSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a cell")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.column.push(self.row, Json::Null).map_err(E::custom)
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.column.push(self.row, Json::Bool(v)).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.column.push(self.row, Json::Int(v)).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        let cell = i64::try_from(v)
            .map(Json::Int)
            .unwrap_or(Json::Other("an integer above 2^63 - 1"));
        self.column.push(self.row, cell).map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.column.push(self.row, Json::Float(v)).map_err(E::custom)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.column.push(self.row, Json::Text(v)).map_err(E::custom)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(format!("row {}: a cell is not a list", self.row)))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(format!("row {}: a cell is not an object", self.row)))
    }
}

struct RowSeed<'c> {
    columns: &'c mut [Declared],
    row: usize,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row: a list of cells")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (row, count) = (self.row, self.columns.len());
        for (i, column) in self.columns.iter_mut().enumerate() {
            if seq.next_element_seed(CellSeed { column, row })?.is_none() {
                return Err(de::Error::custom(format!(
                    "row {row} has {i} cells for {count} columns"
                )));
            }
        }
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(format!("row {row} has more than {count} cells")));
        }
        Ok(())
    }
}

struct RowsSeed<'c> {
    columns: &'c mut [Declared],
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_> {
    type Value = usize;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut row = 0;
        while seq
            .next_element_seed(RowSeed {
                columns: self.columns,
                row,
            })?
            .is_some()
        {
            row += 1;
        }
        Ok(row)
    }
}

struct TableVisitor;

impl<'de> Visitor<'de> for TableVisitor {
    type Value = RecordBatch;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"an object {"columns": [[name, type, nullable], ...], "rows": [[cell, ...], ...]}"#)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RecordBatch, A::Error> {
        let mut columns: Option<Vec<Declared>> = None;
        let mut rows: Option<usize> = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "columns" if columns.is_none() => {
                    let declared: Vec<(String, String, bool)> = map.next_value()?;
                    if declared.is_empty() || declared.len() > MAX_COLUMNS {
                        return Err(de::Error::custom(format!(
                            "a table has 1 to {MAX_COLUMNS} columns, not {}",
                            declared.len()
                        )));
                    }
                    let built: Result<Vec<Declared>, String> = declared
                        .into_iter()
                        .map(|(name, t, nullable)| Declared::new(name, &t, nullable))
                        .collect();
                    columns = Some(built.map_err(de::Error::custom)?);
                }
                "rows" if rows.is_none() => {
                    let Some(columns) = columns.as_mut() else {
                        return Err(de::Error::custom(r#""columns" comes before "rows""#));
                    };
                    rows = Some(map.next_value_seed(RowsSeed { columns })?);
                }
                other => {
                    let shown: String = other.chars().take(40).collect();
                    return Err(de::Error::custom(format!(
                        "`{shown}` is not expected here (a table is \"columns\" then \"rows\", each once)"
                    )));
                }
            }
        }
        let (Some(columns), Some(rows)) = (columns, rows) else {
            return Err(de::Error::custom(r#"a table needs "columns" and "rows""#));
        };
        let mut fields = Vec::with_capacity(columns.len());
        let mut arrays = Vec::with_capacity(columns.len());
        for column in columns {
            fields.push(Field::new(&column.name, column.data_type.clone(), column.nullable));
            arrays.push(column.finish().map_err(de::Error::custom)?);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
            .map_err(|e| de::Error::custom(format!("the rows do not make a table: {e}")))
    }
}

/// The table a job sent as rows (`emit-rows`): `{"columns": [[name, type,
/// nullable], ...], "rows": [[cell, ...], ...]}`, every cell checked
/// against its column as it is read; the first misfit is named.
pub(crate) fn from_json(bytes: &[u8]) -> Result<RecordBatch, String> {
    let mut d = serde_json::Deserializer::from_slice(bytes);
    let batch = de::Deserializer::deserialize_map(&mut d, TableVisitor).map_err(|e| e.to_string())?;
    d.end().map_err(|e| e.to_string())?;
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, DictionaryArray, Float64Array, Int32Array, StringViewArray, UInt64Array};
    use arrow::datatypes::Int32Type;

    #[test]
    fn a_batch_read_as_rows_and_sent_back_as_json_is_the_same_table() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("district", DataType::Utf8View, true),
            Field::new("residents", DataType::Int32, false),
            Field::new("avg_income", DataType::Float64, true),
            Field::new("day", DataType::Date32, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringViewArray::from(vec![Some("东城区"), None])),
                Arc::new(Int32Array::from(vec![12, 7])),
                Arc::new(Float64Array::from(vec![Some(5123.25), None])),
                Arc::new(Date32Array::from(vec![Some(19_000), Some(-3)])),
            ],
        )
        .unwrap();
        let rows = to_rows(&batch).unwrap();
        assert_eq!(rows[0][0], Cell::Text("东城区".into()));
        assert_eq!(rows[1][0], Cell::Null);
        assert_eq!(rows[1][1], Cell::Integer(7));
        assert_eq!(rows[1][3], Cell::Date(-3));
        let json = r#"{"columns": [["district", "Utf8View", true], ["residents", "Int32", false],
                        ["avg_income", "Float64", true], ["day", "Date32", true]],
                       "rows": [["东城区", 12, 5123.25, 19000], [null, 7, null, -3]]}"#;
        assert_eq!(from_json(json.as_bytes()).unwrap(), batch);
    }

    #[test]
    fn a_cell_that_does_not_fit_its_column_is_named_by_row_and_column() {
        let table = |columns: &str, rows: &str| format!(r#"{{"columns": {columns}, "rows": {rows}}}"#);
        let cols = r#"[["n", "Int64", false], ["s", "Utf8", true]]"#;
        let err = from_json(table(cols, r#"[[1, "a"], ["1 OR 1=1", null]]"#).as_bytes()).unwrap_err();
        assert!(
            err.starts_with("row 1, column `n`: Int64 takes an integer, not text"),
            "{err}"
        );
        let err = from_json(table(cols, "[[null, null]]").as_bytes()).unwrap_err();
        assert!(err.contains("not nullable"), "{err}");
        let err = from_json(table(cols, "[[1]]").as_bytes()).unwrap_err();
        assert!(err.starts_with("row 0 has 1 cells for 2 columns"), "{err}");
        let err = from_json(table(cols, r#"[[1, "a", 3]]"#).as_bytes()).unwrap_err();
        assert!(err.starts_with("row 0 has more than 2 cells"), "{err}");
        let err = from_json(table(cols, "[[1.5, null]]").as_bytes()).unwrap_err();
        assert!(err.contains("not a fractional number"), "{err}");
        let err = from_json(table(r#"[["x", "Int8", true]]"#, "[[300]]").as_bytes()).unwrap_err();
        assert!(err.starts_with("column `x`: a value does not fit Int8"), "{err}");
        let err = from_json(table(r#"[["x", "Decimal128(5, 2)", true]]"#, "[]").as_bytes()).unwrap_err();
        assert!(err.contains("is not a type rows carry"), "{err}");
        let err = from_json(br#"{"rows": [], "columns": [["x", "Int64", true]]}"#).unwrap_err();
        assert!(err.contains(r#""columns" comes before "rows""#), "{err}");
        let err = from_json(table("[]", "[]").as_bytes()).unwrap_err();
        assert!(err.contains("1 to 1024 columns"), "{err}");
        // JSON has no NaN or infinity; a stray token is a syntax error.
        assert!(from_json(table(r#"[["x", "Float64", true]]"#, "[[NaN]]").as_bytes()).is_err());
    }

    #[test]
    fn a_type_name_is_matched_never_parsed() {
        // A nested type expression a parser would recurse into is just an unknown name.
        let deep = format!("{}Int64{}", "List(".repeat(50_000), ")".repeat(50_000));
        let json = format!(r#"{{"columns": [["x", "{deep}", true]], "rows": []}}"#);
        let err = from_json(json.as_bytes()).unwrap_err();
        assert!(
            err.contains("is not a type rows carry") && err.len() < 400,
            "{}",
            &err[..200]
        );
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        let json = format!(r#"{{"columns": [["{long}", "Int64", true]], "rows": []}}"#);
        assert!(from_json(json.as_bytes()).unwrap_err().contains("longer than"));
    }

    #[test]
    fn floats_take_integers_negative_zero_is_zero_and_no_rows_keeps_the_columns() {
        let b = from_json(br#"{"columns": [["x", "Float64", true]], "rows": [[3], [0.5], [-0.0]]}"#).unwrap();
        let values = b.column(0).as_primitive::<Float64Type>().values().to_vec();
        assert_eq!(values, vec![3.0, 0.5, 0.0]);
        assert!(values[2].is_sign_positive());
        let empty = from_json(br#"{"columns": [["x", "Float64", true]], "rows": []}"#).unwrap();
        assert_eq!((empty.num_rows(), empty.num_columns()), (0, 1));
    }

    #[test]
    fn types_rows_do_not_carry_are_refused_by_name_not_mangled() {
        let schema = Arc::new(Schema::new(vec![Field::new("big", DataType::UInt64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(UInt64Array::from(vec![u64::MAX]))]).unwrap();
        let err = to_rows(&batch).unwrap_err();
        assert!(
            err.contains("column `big`") && !err.contains(&u64::MAX.to_string()),
            "{err}"
        );
        let schema = Schema::new(vec![Field::new("d", DataType::Decimal128(10, 2), false)]);
        assert!(readable(&schema).unwrap_err().contains("cast it in the SQL"));
    }

    #[test]
    fn a_dictionary_of_long_strings_is_counted_per_use_before_it_is_expanded() {
        let long = "x".repeat(1 << 20);
        let keys = Int32Array::from(vec![0; 64]);
        let values = arrow::array::StringArray::from(vec![long.as_str()]);
        let dict = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values)).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("d", dict.data_type().clone(), false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(dict)]).unwrap();
        // 64 rows of 1 MiB each: 16 fit one call's 16 MiB.
        assert_eq!(rows_within_budget(&batch), 15);
        assert_eq!(to_rows(&batch.slice(0, 15)).unwrap().len(), 15);
    }
}
