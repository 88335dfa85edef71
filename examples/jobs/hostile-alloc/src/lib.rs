//! Hostile: allocates memory until something stops it.

use inland_guest::{Error, Params, job};

fn run(_params: Params) -> Result<(), Error> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![7u8; 16 << 20]);
        std::hint::black_box(&hoard);
    }
}

job!(run);
