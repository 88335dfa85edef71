//! A probe for tests and admins: runs the SQL given as `--param sql=...`,
//! logs what the host said about it, and emits the result as `result`.
//! With `--param also=...` it runs a second query and emits its rows into
//! the same output (two results in one table, as a hostile job would).
//! With `--param keep=2,0,5` it emits only those rows of the result, in that
//! order (a hostile choice of rows that can encode a value).
//! With `--param bind.NAME=VALUE` the main query's `$NAME` placeholder is
//! bound to VALUE by the host (`int:5`, `float:1.5`, `bool:true`, `null`,
//! otherwise text), never formatted into the SQL.
//! The attack suites use it to send hostile SQL through the real job path.

use inland_guest::{Error, Params, Value, datasets, emit, job, log, query_stream, query_stream_with};

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
    let bound: Vec<(&str, Value)> = params
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("bind.").map(|name| (name, v)))
        .map(|(name, v)| Value::from_param(v).map(|v| (name, v)))
        .collect::<Result<_, _>>()?;
    let mut n = 0;
    for (i, sql) in std::iter::once(sql).chain(also).enumerate() {
        let rows = if i == 0 && !bound.is_empty() {
            query_stream_with(&sql, &bound)?
        } else {
            query_stream(&sql)?
        };
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
