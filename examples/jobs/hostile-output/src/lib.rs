//! Hostile: emits far more output than any release could need.

use inland_guest::arrow_array::{ArrayRef, RecordBatch, StringArray};
use inland_guest::{Error, Params, emit, job};
use std::sync::Arc;

fn run(_params: Params) -> Result<(), Error> {
    let chunk: Vec<String> = (0..1024).map(|i| format!("{i:0>1024}")).collect();
    let col: ArrayRef = Arc::new(StringArray::from(chunk));
    let batch = RecordBatch::try_from_iter([("blob", col)])?;
    loop {
        emit("flood", &batch)?;
    }
}

job!(run);
