//! A join of the two example datasets: for each district, the number of
//! enterprises and their employees next to the residents' count and average
//! income. The domain aggregates each dataset; the job joins the two
//! aggregates by district (joining the protected rows themselves is refused
//! unless both sides are the same person or enterprise). The gate shows the
//! reviewer that the output combines rows of two results.

use inland_guest::arrow_array::cast::AsArray;
use inland_guest::arrow_array::types::{Float64Type, Int64Type};
use inland_guest::arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use inland_guest::arrow_schema::{DataType, Field, Schema};
use inland_guest::{Error, Params, emit, job, log, query};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The text of a string column of any of Arrow's string layouts.
fn text(batch: &RecordBatch, i: usize, row: usize) -> Option<String> {
    let c = batch.column(i);
    match c.data_type() {
        DataType::Utf8View => Some(c.as_string_view().value(row).to_string()),
        DataType::Utf8 => Some(c.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Some(c.as_string::<i64>().value(row).to_string()),
        _ => None,
    }
    .filter(|_| !c.is_null(row))
}

fn int(batch: &RecordBatch, i: usize, row: usize) -> Option<i64> {
    let c = batch.column(i).as_primitive_opt::<Int64Type>()?;
    (!c.is_null(row)).then(|| c.value(row))
}

fn run(_params: Params) -> Result<(), Error> {
    let mut enterprises: BTreeMap<String, (Option<i64>, Option<i64>)> = BTreeMap::new();
    for batch in query(
        "SELECT district, count(*) AS enterprises, sum(employees) AS employees \
         FROM enterprises GROUP BY district ORDER BY district",
    )? {
        for row in 0..batch.num_rows() {
            if let Some(district) = text(&batch, 0, row) {
                enterprises.insert(district, (int(&batch, 1, row), int(&batch, 2, row)));
            }
        }
    }
    let (mut districts, mut counts, mut employees, mut residents, mut incomes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for batch in query(
        "SELECT district, count(*) AS residents, avg(income) AS avg_income \
         FROM residents GROUP BY district ORDER BY district",
    )? {
        let income = batch.column(2).as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            let Some(district) = text(&batch, 0, row) else { continue };
            let Some(&(count, staff)) = enterprises.get(&district) else { continue };
            districts.push(district);
            counts.push(count);
            employees.push(staff);
            residents.push(int(&batch, 1, row));
            incomes.push((!income.is_null(row)).then(|| income.value(row)));
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("district", DataType::Utf8, false),
        Field::new("enterprises", DataType::Int64, false),
        Field::new("employees", DataType::Int64, true),
        Field::new("residents", DataType::Int64, false),
        Field::new("avg_income", DataType::Float64, true),
    ]));
    let n = districts.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(districts)),
        Arc::new(Int64Array::from(counts)),
        Arc::new(Int64Array::from(employees)),
        Arc::new(Int64Array::from(residents)),
        Arc::new(Float64Array::from(incomes)),
    ];
    emit("district_economy", &RecordBatch::try_new(schema, columns)?)?;
    log!("joined {n} districts");
    Ok(())
}

job!(run);
