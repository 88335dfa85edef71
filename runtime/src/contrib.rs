//! The hidden aggregate the host adds beside each sum or mean over protected
//! data: per group, the two largest per-entity contributions, the total, and
//! how many rows were negative or missing. The release gate's dominance and
//! p% rules run on these facts; the job never sees them.

use arrow::array::{Array, ArrayRef, AsArray, ListArray};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};
use std::collections::HashMap;
use std::sync::Arc;

/// The function's name in plans.
pub(crate) const NAME: &str = "inland_contributions";

/// Where each figure sits in the returned list.
pub(crate) const LARGEST: usize = 0;
pub(crate) const SECOND: usize = 1;
pub(crate) const TOTAL: usize = 2;
pub(crate) const NEGATIVES: usize = 3;
pub(crate) const MISSING: usize = 4;

#[derive(Debug, PartialEq, Eq, Hash)]
struct Contributions {
    signature: Signature,
}

/// `inland_contributions(value, entity)` as a DataFusion aggregate.
pub(crate) fn udaf() -> AggregateUDF {
    AggregateUDF::from(Contributions {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

fn list_of(t: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", t, true)))
}

impl AggregateUDFImpl for Contributions {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(list_of(DataType::Float64))
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(Acc::default()))
    }
    fn state_fields(&self, _args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("entities", list_of(DataType::Utf8), true)),
            Arc::new(Field::new("sums", list_of(DataType::Float64), true)),
            Arc::new(Field::new("negatives", DataType::UInt64, true)),
            Arc::new(Field::new("missing", DataType::UInt64, true)),
        ])
    }
}

#[derive(Debug, Default)]
struct Acc {
    per_entity: HashMap<String, f64>,
    negatives: u64,
    missing: u64,
    bytes: usize,
}

impl Acc {
    fn add(&mut self, entity: &str, v: f64) {
        match self.per_entity.get_mut(entity) {
            Some(s) => *s += v,
            None => {
                self.bytes += entity.len() + 48;
                self.per_entity.insert(entity.to_string(), v);
            }
        }
    }
}

impl Accumulator for Acc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let [value, entity] = values else {
            return Err(datafusion::error::DataFusionError::Internal(format!(
                "{NAME} takes two arguments"
            )));
        };
        let value = arrow::compute::cast(value, &DataType::Float64)?;
        let value = value.as_primitive::<Float64Type>();
        let entity = arrow::compute::cast(entity, &DataType::Utf8)?;
        let entity = entity.as_string::<i32>();
        for i in 0..value.len() {
            if value.is_null(i) {
                self.missing += 1;
                continue;
            }
            let v = value.value(i);
            if v < 0.0 {
                self.negatives += 1;
            }
            if entity.is_null(i) {
                // Rows without an entity still count: under one shared "unknown" contributor.
                self.add("", v);
            } else {
                self.add(entity.value(i), v);
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let (mut first, mut second, mut total) = (0.0f64, 0.0f64, 0.0f64);
        for v in self.per_entity.values() {
            total += v;
            if *v > first {
                second = first;
                first = *v;
            } else if *v > second {
                second = *v;
            }
        }
        let figures = [first, second, total, self.negatives as f64, self.missing as f64];
        let values: Vec<ScalarValue> = figures.iter().map(|v| ScalarValue::Float64(Some(*v))).collect();
        Ok(ScalarValue::List(ScalarValue::new_list_nullable(
            &values,
            &DataType::Float64,
        )))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.bytes
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let names: Vec<ScalarValue> = self
            .per_entity
            .keys()
            .map(|k| ScalarValue::Utf8(Some(k.clone())))
            .collect();
        let sums: Vec<ScalarValue> = self
            .per_entity
            .values()
            .map(|v| ScalarValue::Float64(Some(*v)))
            .collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&names, &DataType::Utf8)),
            ScalarValue::List(ScalarValue::new_list_nullable(&sums, &DataType::Float64)),
            ScalarValue::UInt64(Some(self.negatives)),
            ScalarValue::UInt64(Some(self.missing)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let [names, sums, negatives, missing] = states else {
            return Err(datafusion::error::DataFusionError::Internal(format!(
                "{NAME}: unexpected state"
            )));
        };
        let names: &ListArray = names.as_list::<i32>();
        let sums: &ListArray = sums.as_list::<i32>();
        let negatives = negatives.as_primitive::<UInt64Type>();
        let missing = missing.as_primitive::<UInt64Type>();
        for row in 0..names.len() {
            if names.is_null(row) {
                continue;
            }
            let n = names.value(row);
            let n = n.as_string::<i32>();
            let s = sums.value(row);
            let s = s.as_primitive::<Float64Type>();
            for i in 0..n.len() {
                self.add(n.value(i), s.value(i));
            }
            self.negatives += negatives.value(row);
            self.missing += missing.value(row);
        }
        Ok(())
    }
}
