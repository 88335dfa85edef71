"""A join in Python: for each district, the number of enterprises and their
employees beside the residents' count and average income. Each dataset is
aggregated by the domain; the job joins the two released-to-it aggregates
by district, as the Rust job `join-stats` does."""

from inland_guest import WitWorld, emit, job, log, query  # noqa: F401 (WitWorld is the export)


@job
def run(params):
    enterprises = {
        district: (count, employees)
        for district, count, employees in query(
            "SELECT district, count(*) AS enterprises, sum(employees) AS employees "
            "FROM enterprises GROUP BY district ORDER BY district"
        )
    }
    residents = query(
        "SELECT district, count(*) AS residents, avg(income) AS avg_income "
        "FROM residents GROUP BY district ORDER BY district"
    )
    rows = [
        (district, *enterprises[district], count, income)
        for district, count, income in residents
        if district in enterprises
    ]
    columns = [
        ("district", "Utf8", False),
        ("enterprises", "Int64", False),
        ("employees", "Int64", True),
        ("residents", "Int64", False),
        ("avg_income", "Float64", True),
    ]
    emit("district_economy", columns, rows)
    log(f"joined {len(rows)} districts")
