//! A probe for tests and admins: runs the SQL given as `--param sql=...`,
//! logs what the host said about it, and emits the result as `result`.
//! With `--param also=...` it runs a second query and emits its rows into
//! the same output (two results in one table, as a hostile job would).
//! With `--param keep=2,0,5` it emits only those rows of the result, in that
//! order (a hostile choice of rows that can encode a value).
//! The attack suites use it to send hostile SQL through the real job path.

use inland_guest::{Error, Params, datasets, emit, job, log, query_stream};

fn run(params: Params) -> Result<(), Error> {
    let names: Vec<String> = datasets()
        .into_iter()
        .map(|d| {
            let cols: Vec<String> = d.columns.into_iter().map(|c| c.name).collect();
            format!("{}({})", d.name, cols.join(","))
        })
        .collect();
    log!("datasets: {}", names.join(" "));
    let sql: String = params.require("sql")?;
    let also: Option<String> = params.raw("also").map(str::to_string);
    let keep: Option<Vec<usize>> = params
        .raw("keep")
        .map(|k| k.split(',').map(|i| i.trim().parse::<usize>()).collect())
        .transpose()
        .map_err(|e| Error::from(format!("keep: {e}")))?;
    let mut n = 0;
    for sql in std::iter::once(sql).chain(also) {
        let rows = query_stream(&sql)?;
        for notice in rows.notices() {
            log!(warn: "notice: {notice}");
        }
        let mut batches = Vec::new();
        for batch in rows {
            let batch = batch?;
            n += batch.num_rows();
            match keep {
                None => emit("result", &batch)?,
                Some(_) => batches.push(batch),
            }
        }
        for &i in keep.iter().flatten() {
            let mut at = i;
            for b in &batches {
                if at < b.num_rows() {
                    emit("result", &b.slice(at, 1))?;
                    break;
                }
                at -= b.num_rows();
            }
        }
    }
    log!("rows: {n}");
    Ok(())
}

job!(run);
