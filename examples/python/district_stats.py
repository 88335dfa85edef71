"""District statistics in Python: how many residents each district has, their
average age and income. The same query and output as the Rust job
`district-stats`, through the row interface."""

from inland_guest import WitWorld, emit, job, log, query  # noqa: F401 (WitWorld is the export)


@job
def run(params):
    min_age = params.get("min_age", 0, int)
    # Bound by the host after parsing: a value, never SQL.
    result = query(
        "SELECT district, count(*) AS residents, avg(age) AS avg_age, avg(income) AS avg_income "
        "FROM residents WHERE age >= $min_age GROUP BY district ORDER BY district",
        min_age=min_age,
    )
    for notice in result.notices():
        log(f"host notice: {notice}", "warn")
    rows = result.all()
    emit("district_stats", result.columns, rows)
    log(f"{len(rows)} districts, residents aged {min_age} and over")
