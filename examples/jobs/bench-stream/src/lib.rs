//! Reads every batch of the query given as `--param sql=...` and keeps
//! nothing: the throughput benchmark for moving results into a job, as
//! Arrow IPC (the default) or, with `--param as=rows`, as rows of cells
//! (the row interface Python jobs use).

use inland_guest::{Cell, Error, Params, job, log, query_stream};

fn run(params: Params) -> Result<(), Error> {
    let sql: String = params.require("sql")?;
    let as_rows = params.raw("as") == Some("rows");
    let (mut rows, mut bytes) = (0usize, 0usize);
    let mut stream = query_stream(&sql)?;
    if as_rows {
        while let Some(batch) = stream.next_cells() {
            for row in batch? {
                rows += 1;
                bytes += row
                    .iter()
                    .map(|c| match c {
                        Cell::Text(s) => s.len(),
                        Cell::Null => 0,
                        _ => 8,
                    })
                    .sum::<usize>();
            }
        }
    } else {
        for batch in stream {
            let batch = batch?;
            rows += batch.num_rows();
            bytes += batch.get_array_memory_size();
        }
    }
    log!("rows={rows} bytes={bytes}");
    Ok(())
}

job!(run);
