//! The row interface: a query's batch as rows of cells, and rows of cells
//! with a declared schema as an Arrow table. For jobs that cannot use Arrow
//! (Python in a component cannot load pyarrow); the host does the converting,
//! so what the job emits meets the same checks as an Arrow table.

use crate::host::bindings::inland::job::host::{Cell, Column};
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    new_null_array,
};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Date32Type, Field, Float64Type, Int64Type, Schema, UInt64Type};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use std::str::FromStr;
use std::sync::Arc;

/// Cells one `emit-rows` call may carry. The guest's memory limit already
/// bounds what it can send; this keeps one call's conversion short.
pub(crate) const MAX_CELLS: usize = 1 << 22;

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

/// One column of a batch as cells.
fn cells(name: &str, array: &ArrayRef) -> Result<Vec<Cell>, String> {
    let data_type = array.data_type();
    if let DataType::Dictionary(_, values) = data_type {
        // Dictionary encoding is the engine's choice, not the job's: read the values.
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

/// A batch as rows of cells.
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

fn cell_name(cell: &Cell) -> &'static str {
    match cell {
        Cell::Null => "null",
        Cell::Boolean(_) => "a boolean",
        Cell::Integer(_) => "an integer",
        Cell::Float(_) => "a float",
        Cell::Text(_) => "text",
        Cell::Date(_) => "a date",
    }
}

/// One declared column built from the `index`th cell of every row.
fn build(index: usize, column: &Column, data_type: &DataType, rows: &[Vec<Cell>]) -> Result<ArrayRef, String> {
    let name = &column.name;
    let kind = kind(data_type).ok_or_else(|| unsupported(name, data_type))?;
    let wrong = |row: usize, cell: &Cell| {
        format!(
            "row {row}, column `{name}`: {data_type} takes {}, not {}",
            match kind {
                Kind::Null => "only null",
                Kind::Boolean => "a boolean",
                Kind::Integer => "an integer",
                Kind::Float => "a float or an integer",
                Kind::Text => "text",
                Kind::Date => "a date",
            },
            cell_name(cell)
        )
    };
    let mut cells = rows.iter().map(|r| r.get(index).unwrap_or(&Cell::Null)).enumerate();
    if !column.nullable
        && let Some((row, _)) = cells.clone().find(|(_, c)| matches!(c, Cell::Null))
    {
        return Err(format!(
            "row {row}, column `{name}` is declared not nullable but holds null"
        ));
    }
    let built: ArrayRef = match kind {
        Kind::Null => match cells.find(|(_, c)| !matches!(c, Cell::Null)) {
            Some((row, cell)) => return Err(wrong(row, cell)),
            None => new_null_array(&DataType::Null, rows.len()),
        },
        Kind::Boolean => {
            let mut b = BooleanBuilder::with_capacity(rows.len());
            for (row, cell) in cells {
                match cell {
                    Cell::Null => b.append_null(),
                    Cell::Boolean(v) => b.append_value(*v),
                    other => return Err(wrong(row, other)),
                }
            }
            Arc::new(b.finish())
        }
        Kind::Integer => {
            let mut b = Int64Builder::with_capacity(rows.len());
            for (row, cell) in cells {
                match cell {
                    Cell::Null => b.append_null(),
                    Cell::Integer(v) => b.append_value(*v),
                    other => return Err(wrong(row, other)),
                }
            }
            Arc::new(b.finish())
        }
        Kind::Float => {
            let mut b = Float64Builder::with_capacity(rows.len());
            for (row, cell) in cells {
                match cell {
                    Cell::Null => b.append_null(),
                    Cell::Float(v) => b.append_value(*v),
                    Cell::Integer(v) => b.append_value(*v as f64),
                    other => return Err(wrong(row, other)),
                }
            }
            Arc::new(b.finish())
        }
        Kind::Text => {
            let mut b = StringBuilder::with_capacity(rows.len(), 0);
            for (row, cell) in cells {
                match cell {
                    Cell::Null => b.append_null(),
                    Cell::Text(v) => b.append_value(v),
                    other => return Err(wrong(row, other)),
                }
            }
            Arc::new(b.finish())
        }
        Kind::Date => {
            let mut b = Date32Builder::with_capacity(rows.len());
            for (row, cell) in cells {
                match cell {
                    Cell::Null => b.append_null(),
                    Cell::Date(v) => b.append_value(*v),
                    other => return Err(wrong(row, other)),
                }
            }
            Arc::new(b.finish())
        }
    };
    if built.data_type() == data_type {
        Ok(built)
    } else {
        cast(&built, data_type).map_err(|m| format!("column `{name}`: {m}"))
    }
}

/// Rows of cells under declared columns as an Arrow table; every cell is
/// checked against its column, and the first misfit is named.
pub(crate) fn from_rows(columns: &[Column], rows: &[Vec<Cell>]) -> Result<RecordBatch, String> {
    if columns.is_empty() {
        return Err("an output needs at least one column".into());
    }
    if let Some((row, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != columns.len()) {
        return Err(format!("row {row} has {} cells for {} columns", r.len(), columns.len()));
    }
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays = Vec::with_capacity(columns.len());
    for (index, column) in columns.iter().enumerate() {
        let data_type = DataType::from_str(&column.data_type).map_err(|_| {
            format!(
                "column `{}`: `{}` is not an Arrow data type (write it as Arrow prints it: Int64, Float64, Utf8, Date32, Boolean)",
                column.name, column.data_type
            )
        })?;
        arrays.push(build(index, column, &data_type, rows)?);
        fields.push(Field::new(&column.name, data_type, column.nullable));
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
        .map_err(|e| format!("the rows do not make a table: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, Float64Array, Int32Array, StringViewArray, UInt64Array};

    fn column(name: &str, data_type: &str, nullable: bool) -> Column {
        Column {
            name: name.into(),
            data_type: data_type.into(),
            nullable,
        }
    }

    #[test]
    fn a_batch_read_as_rows_and_emitted_back_is_the_same_table() {
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
        let back = from_rows(&columns(&schema), &rows).unwrap();
        assert_eq!(back, batch);
    }

    #[test]
    fn a_cell_that_does_not_fit_its_column_is_named_by_row_and_column() {
        let columns = [column("n", "Int64", false), column("s", "Utf8", true)];
        let rows = vec![
            vec![Cell::Integer(1), Cell::Text("a".into())],
            vec![Cell::Text("1 OR 1=1".into()), Cell::Null],
        ];
        let err = from_rows(&columns, &rows).unwrap_err();
        assert_eq!(err, "row 1, column `n`: Int64 takes an integer, not text");
        let err = from_rows(&columns, &[vec![Cell::Null, Cell::Null]]).unwrap_err();
        assert!(err.contains("not nullable"), "{err}");
        let err = from_rows(&columns, &[vec![Cell::Integer(1)]]).unwrap_err();
        assert_eq!(err, "row 0 has 1 cells for 2 columns");
        let err = from_rows(&[column("x", "Int8", true)], &[vec![Cell::Integer(300)]]).unwrap_err();
        assert_eq!(err, "column `x`: a value does not fit Int8");
        let err = from_rows(&[column("x", "Decimal128(5, 2)", true)], &[]).unwrap_err();
        assert!(err.contains("rows do not carry"), "{err}");
        let err = from_rows(&[column("x", "Integer", true)], &[]).unwrap_err();
        assert!(err.contains("not an Arrow data type"), "{err}");
    }

    #[test]
    fn a_float_column_takes_integers_and_a_result_of_no_rows_keeps_its_columns() {
        let columns = [column("x", "Float64", true)];
        let b = from_rows(&columns, &[vec![Cell::Integer(3)], vec![Cell::Float(0.5)]]).unwrap();
        assert_eq!(b.column(0).as_primitive::<Float64Type>().values(), &[3.0, 0.5]);
        let empty = from_rows(&columns, &[]).unwrap();
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
        let schema = Arc::new(Schema::new(vec![Field::new("d", DataType::Decimal128(10, 2), false)]));
        let decimals = arrow::array::Decimal128Array::from(vec![1234_i128])
            .with_precision_and_scale(10, 2)
            .unwrap();
        let batch = RecordBatch::try_new(schema, vec![Arc::new(decimals)]).unwrap();
        assert!(to_rows(&batch).unwrap_err().contains("cast it in the SQL"));
    }
}
