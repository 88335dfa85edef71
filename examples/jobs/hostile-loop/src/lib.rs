//! Hostile: never returns.

use inland_guest::{Error, Params, job};

fn run(_params: Params) -> Result<(), Error> {
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

job!(run);
