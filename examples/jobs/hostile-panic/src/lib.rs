//! Hostile (or just buggy): panics part-way through.

use inland_guest::{Error, Params, job};

fn run(params: Params) -> Result<(), Error> {
    let divisor: i64 = params.get_or("divisor", 0)?;
    let values = [1_i64, 2, 3];
    let total: i64 = values.iter().map(|v| v / divisor).sum();
    panic!("the job gave up after computing {total}");
}

job!(run);
