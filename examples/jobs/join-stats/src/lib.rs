//! A join of the two example datasets: for each district, the number of
//! enterprises and their employees next to the residents' average income.

use inland_guest::{Error, Params, emit, job, log, query};

fn run(_params: Params) -> Result<(), Error> {
    let batches = query(
        "WITH e AS (SELECT district, count(*) AS enterprises, sum(employees) AS employees \
                    FROM enterprises GROUP BY district), \
              r AS (SELECT district, count(*) AS residents, avg(income) AS avg_income \
                    FROM residents GROUP BY district) \
         SELECT r.district, e.enterprises, e.employees, r.residents, r.avg_income \
         FROM r JOIN e ON r.district = e.district ORDER BY r.district",
    )?;
    let n: usize = batches.iter().map(|b| b.num_rows()).sum();
    for batch in &batches {
        emit("district_economy", batch)?;
    }
    log!("joined {n} districts");
    Ok(())
}

job!(run);
