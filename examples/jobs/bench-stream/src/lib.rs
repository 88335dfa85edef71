//! Reads every batch of the query given as `--param sql=...` and keeps
//! nothing: the throughput benchmark for moving results into a job.

use inland_guest::{Error, Params, job, log, query_stream};

fn run(params: Params) -> Result<(), Error> {
    let sql: String = params.require("sql")?;
    let (mut rows, mut bytes) = (0usize, 0usize);
    for batch in query_stream(&sql)? {
        let batch = batch?;
        rows += batch.num_rows();
        bytes += batch.get_array_memory_size();
    }
    log!("rows={rows} bytes={bytes}");
    Ok(())
}

job!(run);
