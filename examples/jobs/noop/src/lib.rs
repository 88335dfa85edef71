//! The smallest job: does nothing and succeeds. The start-up benchmark runs it.

use inland_guest::{Error, Params, job};

fn run(_params: Params) -> Result<(), Error> {
    Ok(())
}

job!(run);
