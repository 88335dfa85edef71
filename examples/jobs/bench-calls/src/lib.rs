//! Makes `n` host calls (`list-datasets`) and nothing else: the host-call
//! round-trip benchmark compares it at two values of `n`.

use inland_guest::{Error, Params, datasets, job};

fn run(params: Params) -> Result<(), Error> {
    let n: u64 = params.get_or("n", 0)?;
    let mut seen = 0usize;
    for _ in 0..n {
        seen += datasets().len();
    }
    std::hint::black_box(seen);
    Ok(())
}

job!(run);
