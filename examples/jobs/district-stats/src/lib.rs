//! District statistics: how many residents each district has, their average
//! age and income. The kind of aggregate a domain releases.

use inland_guest::{Error, Params, Value, emit, job, log, query_stream_with};

fn run(params: Params) -> Result<(), Error> {
    let min_age: i64 = params.get_or("min_age", 0)?;
    // Bound by the host after parsing: a value, never SQL.
    let rows = query_stream_with(
        "SELECT district, count(*) AS residents, avg(age) AS avg_age, avg(income) AS avg_income \
         FROM residents WHERE age >= $min_age GROUP BY district ORDER BY district",
        &[("min_age", Value::Integer(min_age))],
    )?;
    for notice in rows.notices() {
        log!(warn: "host notice: {notice}");
    }
    let mut districts = 0;
    for batch in rows {
        let batch = batch?;
        districts += batch.num_rows();
        emit("district_stats", &batch)?;
    }
    log!("{districts} districts, residents aged {min_age} and over");
    Ok(())
}

job!(run);
