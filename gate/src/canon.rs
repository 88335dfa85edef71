//! Canonical text of a cell, shared by the host (when it records facts) and
//! the gate (when it finds them), so `12`, `12.0` and a `UInt8` 12 all match.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type};
use arrow::datatypes::{UInt8Type, UInt16Type, UInt32Type, UInt64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// The canonical text of a float: integral values print as integers.
pub fn float(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Whether a column holds numbers (the cells that can be measures).
pub fn is_numeric(t: &DataType) -> bool {
    t.is_numeric()
}

/// A numeric cell as f64, for the checks that do arithmetic.
pub fn number(array: &ArrayRef, row: usize) -> Option<f64> {
    if array.is_null(row) {
        return None;
    }
    macro_rules! prim {
        ($t:ty) => {
            Some(array.as_primitive::<$t>().value(row) as f64)
        };
    }
    match array.data_type() {
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        DataType::Float32 => prim!(Float32Type),
        DataType::Float64 => prim!(Float64Type),
        _ => {
            let cast = arrow::compute::cast(&array.slice(row, 1), &DataType::Float64).ok()?;
            let f = cast.as_primitive::<Float64Type>();
            (!f.is_null(0)).then(|| f.value(0))
        }
    }
}

/// Every cell of a column as canonical text (`None` for nulls).
pub fn column(array: &ArrayRef) -> Result<Vec<Option<String>>, arrow::error::ArrowError> {
    let n = array.len();
    macro_rules! ints {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            return Ok((0..n)
                .map(|i| (!a.is_null(i)).then(|| a.value(i).to_string()))
                .collect());
        }};
    }
    match array.data_type() {
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Float32 => {
            let a = array.as_primitive::<Float32Type>();
            return Ok((0..n)
                .map(|i| (!a.is_null(i)).then(|| float(a.value(i) as f64)))
                .collect());
        }
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            return Ok((0..n).map(|i| (!a.is_null(i)).then(|| float(a.value(i)))).collect());
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            return Ok((0..n)
                .map(|i| (!a.is_null(i)).then(|| a.value(i).to_string()))
                .collect());
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            return Ok((0..n)
                .map(|i| (!a.is_null(i)).then(|| a.value(i).to_string()))
                .collect());
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            return Ok((0..n)
                .map(|i| (!a.is_null(i)).then(|| a.value(i).to_string()))
                .collect());
        }
        _ => {}
    }
    let options = FormatOptions::default();
    let f = ArrayFormatter::try_new(array.as_ref(), &options)?;
    Ok((0..n)
        .map(|i| (!array.is_null(i)).then(|| f.value(i).to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, UInt8Array};
    use std::sync::Arc;

    #[test]
    fn equal_numbers_of_different_types_have_one_text() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(12), None]));
        let b: ArrayRef = Arc::new(Float64Array::from(vec![12.0, 12.5]));
        let c: ArrayRef = Arc::new(UInt8Array::from(vec![12u8]));
        assert_eq!(column(&a).unwrap(), vec![Some("12".to_string()), None]);
        assert_eq!(
            column(&b).unwrap(),
            vec![Some("12".to_string()), Some("12.5".to_string())]
        );
        assert_eq!(column(&c).unwrap(), vec![Some("12".to_string())]);
        assert_eq!(number(&b, 1), Some(12.5));
    }
}
