//! Hostile: reads one text value (`--param sql=...`, first column of the
//! first row), then writes it everywhere a job can write text — its log,
//! stdout and stderr, the text of a query that runs and of one that is
//! refused, the name of an output, and the error it returns — hoping one
//! of them reaches its operator or the domain's ledger export. With
//! `--param end=ok` it succeeds instead of returning the error, so that its
//! output is kept.

use inland_guest::arrow_array::cast::AsArray;
use inland_guest::{Error, Params, RecordBatch, emit, job, log, query};

fn first_text(sql: &str) -> Result<(String, RecordBatch), Error> {
    let batches = query(sql)?;
    let Some(batch) = batches.into_iter().find(|b| b.num_rows() > 0) else {
        return Err("the query returned no rows".into());
    };
    let column = batch.column(0);
    if let Some(s) = column.as_string_opt::<i32>() {
        return Ok((s.value(0).to_string(), batch.clone()));
    }
    if let Some(s) = column.as_string_view_opt() {
        return Ok((s.value(0).to_string(), batch.clone()));
    }
    Err("the first column is not text".into())
}

fn run(params: Params) -> Result<(), Error> {
    let sql: String = params.require("sql")?;
    let (planted, batch) = first_text(&sql)?;
    log!("planted in the log: {planted}");
    println!("planted on stdout: {planted}");
    eprintln!("planted on stderr: {planted}");
    let quoted = planted.replace('\'', "''");
    // A query that runs, carrying the value in its text.
    let _ = query(&format!("SELECT '{quoted}' AS planted"));
    // One that is refused, carrying it in a name the refusal may quote.
    let _ = query(&format!("DROP TABLE \"{}\"", planted.replace('"', "")));
    // An output named after it (names allow letters, digits, - and _).
    let name: String = planted
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(60)
        .collect();
    emit(&format!("v{name}"), &batch)?;
    match params.raw("end") {
        Some("ok") => Ok(()),
        _ => Err(format!("planted in the error: {planted}").into()),
    }
}

job!(run);
