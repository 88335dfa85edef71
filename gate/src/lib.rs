//! The release gate's automated disclosure checks. Pure: the host passes in
//! the emitted table, the contributor facts it computed while the job's
//! queries ran, the policy's parameters, the identifier index and the grant's
//! release history; the gate returns a report (pass / fail / needs-review per
//! check, with the cells concerned) and the plan for the released version
//! (suppressed cells, recomputed totals, rounding).
//!
//! Nothing the guest says is an input: a cell is judged by host facts when it
//! can be traced to one, and by the job's label (and a reviewer) when not.

pub mod canon;
mod check;
pub mod facts;
pub mod history;
pub mod index;
pub mod leak;
pub mod report;
pub mod sketch;

pub use check::{DP_MOOT, GateError, GateInput, GateOutcome, OVERRIDABLE, check};
pub use facts::{CellFact, Contributions, FactIndex, MeasureKind, RowAt};
pub use history::{ReleaseHistory, ReleasedCell};
pub use index::{KeyedIndex, StoredIndex};
pub use report::{CellChange, CellIssue, CheckResult, GateReport, ReleasePlan, Remedy, Status, Verdict};
pub use sketch::{Difference, EntitySketch};

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, new_null_array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Builds the released version of a table from a plan: suppressed cells
/// become null; recomputed or rounded cells take their new values (integer
/// columns stay integers, as Int64; other numbers become Float64).
pub fn apply(table: &RecordBatch, plan: &ReleasePlan) -> Result<RecordBatch, GateError> {
    let err = |e: arrow::error::ArrowError| GateError::Table(e.to_string());
    let mut by_col: BTreeMap<usize, Vec<(usize, CellChange)>> = BTreeMap::new();
    for (r, c, ch) in &plan.changes {
        by_col.entry(*c as usize).or_default().push((*r as usize, *ch));
    }
    let schema = table.schema();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut columns: Vec<ArrayRef> = table.columns().to_vec();
    for (c, changes) in by_col {
        let (Some(field), Some(array)) = (fields.get(c).cloned(), columns.get(c).cloned()) else {
            return Err(GateError::Table(format!(
                "the release plan names column {c}, which the table lacks"
            )));
        };
        let new: ArrayRef = if field.data_type().is_integer() {
            let cast = arrow::compute::cast(&array, &DataType::Int64).map_err(err)?;
            let a = cast
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| GateError::Table("integer cast".into()))?;
            let mut v: Vec<Option<i64>> = a.iter().collect();
            for (r, ch) in changes {
                if let Some(slot) = v.get_mut(r) {
                    *slot = match ch {
                        CellChange::Suppress => None,
                        CellChange::Set(x) => Some(x.round() as i64),
                    };
                }
            }
            Arc::new(Int64Array::from(v))
        } else if field.data_type().is_numeric() {
            let cast = arrow::compute::cast(&array, &DataType::Float64).map_err(err)?;
            let a = cast
                .as_any()
                .downcast_ref::<Float64Array>()
                .ok_or_else(|| GateError::Table("float cast".into()))?;
            let mut v: Vec<Option<f64>> = a.iter().collect();
            for (r, ch) in changes {
                if let Some(slot) = v.get_mut(r) {
                    *slot = match ch {
                        CellChange::Suppress => None,
                        CellChange::Set(x) => Some(x),
                    };
                }
            }
            Arc::new(Float64Array::from(v))
        } else {
            // Only suppression applies to text.
            let mut keep = vec![true; array.len()];
            for (r, _) in changes {
                if let Some(k) = keep.get_mut(r) {
                    *k = false;
                }
            }
            let mask = arrow::array::BooleanArray::from(keep.iter().map(|k| !k).collect::<Vec<bool>>());
            let nulls = new_null_array(array.data_type(), array.len());
            arrow::compute::kernels::zip::zip(&mask, &nulls, &array).map_err(err)?
        };
        fields[c] = Field::new(field.name(), new.data_type().clone(), true);
        columns[c] = new;
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(err)
}
