//! Dummy rows for a published dataset: values that satisfy its schema and
//! look like what the policy says the column is (identifiers with correct
//! check digits, a dimension's published values, plausible numbers), from a
//! seeded generator, so a job can be tried with nothing real in it.

use crate::error::{Error, Result};
use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder, Int64Builder,
    RecordBatch, StringBuilder, new_null_array,
};
use arrow::datatypes::{DataType, Field, Schema};
use serde::Deserialize;
use std::str::FromStr;
use std::sync::Arc;

/// A column as `catalog.json` publishes it.
#[derive(Debug, Clone, Deserialize)]
pub struct PublishedColumn {
    /// Its name.
    pub name: String,
    /// Its Arrow type, as Arrow prints it.
    #[serde(rename = "type")]
    pub data_type: String,
    /// Whether it may hold nulls.
    #[serde(default = "yes")]
    pub nullable: bool,
    /// Its class under the policy (`direct-identifier`, `dimension`, …).
    #[serde(default)]
    pub class: Option<String>,
    /// The values the admin published for it.
    #[serde(default)]
    pub values: Option<Vec<String>>,
    /// Registration proved it holds every value once: dummy values repeat none either.
    #[serde(default)]
    pub unique: bool,
}

fn yes() -> bool {
    true
}

/// A small seeded generator (SplitMix64): the same seed, the same rows.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Names of a few made-up people.
const NAMES: [&str; 8] = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄敏"];
/// Made-up categories where nothing is published.
const CATEGORIES: [&str; 6] = ["类别A", "类别B", "类别C", "类别D", "类别E", "类别F"];

/// A value of a list for row `row`: any of them, or, for a unique column,
/// each in turn and then numbered copies (so the first rows still join).
fn one_of(list: &[&str], unique: bool, row: usize, rng: &mut Rng) -> String {
    match (unique, list.get(row)) {
        (true, Some(v)) => v.to_string(),
        (true, None) => format!("{}-{row}", list[row % list.len().max(1)]),
        (false, _) => list[rng.below(list.len() as u64) as usize].to_string(),
    }
}

/// A text value for row `row` of a column, by what the column is.
fn text(c: &PublishedColumn, row: usize, rng: &mut Rng) -> String {
    let name = c.name.to_ascii_lowercase();
    if let Some(values) = c.values.as_ref().filter(|v| !v.is_empty()) {
        let list: Vec<&str> = values.iter().map(String::as_str).collect();
        return one_of(&list, c.unique, row, rng);
    }
    if name.contains("mobile") || name.contains("phone") {
        return format!("1{}{:09}", [3, 5, 8][rng.below(3) as usize], rng.below(1_000_000_000));
    }
    if name.contains("uscc") || name.contains("credit_code") {
        // Unique: the row number in the sequence part.
        let body = format!("91110000{:09}", row % 1_000_000_000);
        let check = inland_policies::identifiers::uscc_check(&body).unwrap_or('0');
        return format!("{body}{check}");
    }
    let identifier = c.class.as_deref() == Some("direct-identifier");
    if identifier && name.contains("name") {
        return one_of(&NAMES, c.unique, row, rng);
    }
    if identifier {
        // A resident-ID shape with a correct check digit, unique per row.
        // The region part counts thousands of rows and the sequence part the
        // rest: unique for ten million rows.
        let (year, month, day) = (1950 + rng.below(55), 1 + rng.below(12), 1 + rng.below(28));
        let body = format!(
            "11{:04}{year:04}{month:02}{day:02}{:03}",
            (row / 1000) % 10_000,
            row % 1000
        );
        let check = inland_policies::identifiers::resident_id_check(&body).unwrap_or('0');
        return format!("{body}{check}");
    }
    one_of(&CATEGORIES, c.unique, row, rng)
}

/// A plausible number for row `row` of a column, by its name (a unique
/// column counts up from 1).
fn number(c: &PublishedColumn, row: usize, rng: &mut Rng) -> f64 {
    let name = c.name.to_ascii_lowercase();
    if c.unique {
        (row + 1) as f64
    } else if name.contains("age") {
        18.0 + rng.below(70) as f64
    } else if name.contains("year") {
        2000.0 + rng.below(26) as f64
    } else {
        // Skewed like amounts: most modest, a few large.
        ((1_000.0 + 20_000.0 * rng.unit().powi(3)) * 100.0).round() / 100.0
    }
}

/// `rows` dummy rows for a dataset's columns, from `seed`.
pub fn rows(columns: &[PublishedColumn], rows: usize, seed: u64) -> Result<RecordBatch> {
    let mut rng = Rng::new(seed);
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for c in columns {
        let ty = DataType::from_str(&c.data_type)
            .map_err(|e| Error::Invalid(format!("column `{}` has a type this tool cannot read: {e}", c.name)))?;
        // Stored as the plain type a query sees (views read back as views).
        let (ty, array): (DataType, ArrayRef) = match ty {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let mut b = StringBuilder::new();
                for r in 0..rows {
                    b.append_value(text(c, r, &mut rng));
                }
                (DataType::Utf8, Arc::new(b.finish()))
            }
            DataType::Int64 | DataType::Int32 | DataType::Int16 | DataType::Int8 => {
                // Made as 64-bit and kept within the published type.
                let (low, high) = match ty {
                    DataType::Int8 => (i64::from(i8::MIN), i64::from(i8::MAX)),
                    DataType::Int16 => (i64::from(i16::MIN), i64::from(i16::MAX)),
                    DataType::Int32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
                    _ => (i64::MIN, i64::MAX),
                };
                let mut b = Int64Builder::new();
                for r in 0..rows {
                    b.append_value((number(c, r, &mut rng) as i64).clamp(low, high));
                }
                let wide: ArrayRef = Arc::new(b.finish());
                let array = arrow::compute::cast(&wide, &ty)
                    .map_err(|e| Error::Internal(format!("column `{}`: {e}", c.name)))?;
                (ty.clone(), array)
            }
            DataType::Float64 => {
                let mut b = Float64Builder::new();
                for r in 0..rows {
                    b.append_value(number(c, r, &mut rng));
                }
                (DataType::Float64, Arc::new(b.finish()))
            }
            DataType::Float32 => {
                let mut b = Float32Builder::new();
                for r in 0..rows {
                    b.append_value(number(c, r, &mut rng) as f32);
                }
                (DataType::Float32, Arc::new(b.finish()))
            }
            DataType::Decimal128(p, s) if p <= 38 && s >= 0 && i16::from(s) <= i16::from(p) => {
                // Kept within the precision: the largest value it holds.
                let max = 10i128.checked_pow(u32::from(p)).map(|m| m - 1).unwrap_or(i128::MAX);
                let mut b = Decimal128Builder::new();
                for r in 0..rows {
                    let v = (number(c, r, &mut rng) * 10f64.powi(i32::from(s))).round() as i128;
                    b.append_value(v.clamp(-max, max));
                }
                let array = b
                    .finish()
                    .with_precision_and_scale(p, s)
                    .map_err(|e| Error::Invalid(format!("column `{}`: {e}", c.name)))?;
                (DataType::Decimal128(p, s), Arc::new(array))
            }
            DataType::Date32 => {
                let mut b = Date32Builder::new();
                for _ in 0..rows {
                    // 2000-01-01 and the 26 years after.
                    b.append_value(10_957 + rng.below(26 * 365) as i32);
                }
                (DataType::Date32, Arc::new(b.finish()))
            }
            DataType::Boolean => {
                let mut b = BooleanBuilder::new();
                for _ in 0..rows {
                    b.append_value(rng.below(2) == 1);
                }
                (DataType::Boolean, Arc::new(b.finish()))
            }
            // Nulls only for simple types: building some (dictionaries,
            // unions, huge fixed sizes) from a hostile catalog would panic.
            other @ (DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Date64
            | DataType::Timestamp(_, None)
            | DataType::Binary
            | DataType::Null)
                if c.nullable =>
            {
                (other.clone(), new_null_array(&other, rows))
            }
            other => {
                return Err(Error::Invalid(format!(
                    "column `{}` is {other}, which dummy data cannot fill yet",
                    c.name
                )));
            }
        };
        // A column not published as unique repeats a value, so registration
        // finds it not unique, as the domain did: a join or a count that the
        // domain treats as repeating rows is treated so here too.
        let array = if !c.unique && rows >= 2 {
            let indices =
                arrow::array::UInt32Array::from_iter_values((0..rows as u32).map(|i| if i == 1 { 0 } else { i }));
            arrow::compute::take(&array, &indices, None)
                .map_err(|e| Error::Internal(format!("column `{}`: {e}", c.name)))?
        } else {
            array
        };
        fields.push(Field::new(&c.name, ty, c.nullable));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| Error::Internal(format!("dummy rows do not fit their schema: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, ty: &str, class: Option<&str>, values: Option<&[&str]>) -> PublishedColumn {
        PublishedColumn {
            name: name.into(),
            data_type: ty.into(),
            nullable: false,
            class: class.map(String::from),
            values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
            // Identifiers are published as unique here; the rest are not.
            unique: class == Some("direct-identifier"),
        }
    }

    #[test]
    fn identifiers_check_out_dimensions_use_published_values_and_seeds_repeat() {
        let columns = [
            column("resident_id", "Utf8", Some("direct-identifier"), None),
            column("uscc", "Utf8", Some("direct-identifier"), None),
            column(
                "district",
                "Utf8",
                Some("quasi-identifier"),
                Some(&["东城区", "西城区"]),
            ),
            column("age", "Int64", Some("quasi-identifier"), None),
            column("income", "Decimal128(12, 2)", Some("sensitive"), None),
        ];
        let batch = rows(&columns, 500, 7).unwrap();
        assert_eq!(batch.num_rows(), 500);
        assert_eq!(batch, rows(&columns, 500, 7).unwrap(), "same seed, same rows");
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        let codes = batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        let districts = batch
            .column(2)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        let mut seen = std::collections::HashSet::new();
        for r in 0..500 {
            let id = ids.value(r);
            assert_eq!(id.len(), 18, "{id}");
            assert_eq!(
                inland_policies::identifiers::resident_id_check(&id[..17]),
                id.chars().last(),
                "{id}"
            );
            assert!(seen.insert(id.to_string()), "unique: {id}");
            let code = codes.value(r);
            assert_eq!(
                inland_policies::identifiers::uscc_check(&code[..17]),
                code.chars().last(),
                "{code}"
            );
            assert!(["东城区", "西城区"].contains(&districts.value(r)));
        }
        // What was not published as unique repeats a value, as in the domain.
        assert_eq!(districts.value(0), districts.value(1));
        let err = rows(&[column("x", "Duration(Second)", None, None)], 1, 1).unwrap_err();
        assert!(err.to_string().contains("`x`"), "{err}");
        // Narrow types keep their type and their range; decimals their precision.
        let narrow = rows(
            &[
                column("n", "Int8", None, None),
                column("amount", "Decimal128(5, 2)", None, None),
            ],
            300,
            2,
        )
        .unwrap();
        assert_eq!(narrow.schema().field(0).data_type(), &DataType::Int8);
        assert_eq!(narrow.column(0).null_count(), 0);
        let amounts = narrow
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::Decimal128Array>()
            .unwrap();
        assert!(amounts.iter().flatten().all(|v| v.abs() <= 99_999));
        // A type whose nulls would panic to build is refused, not built.
        let mut dictionary = column("d", "Dictionary(Int32, Utf8)", None, None);
        dictionary.nullable = true;
        assert!(rows(&[dictionary], 10, 1).is_err());
    }
}
