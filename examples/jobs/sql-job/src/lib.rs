//! The SQL job Inland ships: it runs the named `SELECT` statements of a
//! `.sql` file, each as its own output, inside the same sandbox, under the
//! same admission, policy, quarantine, gate and ledger as any job. The host
//! hands the statements over as `output:NNN:NAME` parameters (numbered in file order)
//! and the submission's own parameters as `bind.NAME`, which the host binds
//! to each statement's `$NAME` placeholders: values are never SQL.

use inland_guest::{Error, Params, RecordBatch, Value, emit, job, log, query_stream_with};

fn run(params: Params) -> Result<(), Error> {
    let bound: Vec<(&str, Value)> = params
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("bind.").map(|name| (name, v)))
        .map(|(name, v)| Value::from_param(v).map(|v| (name, v)))
        .collect::<Result<_, _>>()?;
    let mut outputs = 0;
    for (key, sql) in params.iter() {
        // `output:NNN:NAME`: the number keeps the file's order.
        let Some(name) = key.strip_prefix("output:").and_then(|k| k.split_once(':')).map(|(_, n)| n) else {
            continue;
        };
        outputs += 1;
        let rows = query_stream_with(sql, &bound).map_err(|e| Error::from(format!("{name}: {e}")))?;
        for notice in rows.notices() {
            log!(warn: "{name}: host notice: {notice}");
        }
        let schema = rows.schema();
        let mut n = 0;
        for batch in rows {
            let batch = batch.map_err(|e| Error::from(format!("{name}: {e}")))?;
            n += batch.num_rows();
            emit(name, &batch)?;
        }
        if n == 0 {
            // An empty result is still an output, with its columns.
            emit(name, &RecordBatch::new_empty(schema))?;
        }
        log!("{name}: {n} rows");
    }
    if outputs == 0 {
        return Err(Error::from("no statements: each needs an `-- output: NAME` line before it"));
    }
    Ok(())
}

job!(run);
