"""A Python job for tests. With `--param sql=...` it runs the SQL and emits
the result as `probe` (what the Rust `sql-probe` does); with
`--param try=socket|file|env|listdir` it tries what a hostile job would: the
network, a file of the host, the environment, the file system, and logs
what it got. Inland must give it nothing."""

from inland_guest import WitWorld, emit, job, log, query  # noqa: F401 (WitWorld is the export)


@job
def run(params):
    sql = params.get("sql")
    if sql is not None:
        result = query(sql)
        emit("probe", result.columns, result)
        return
    what = params.get("try", "")
    if what == "socket":
        import socket

        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(("10.0.0.1", 80))
        log("connected")
    elif what == "file":
        with open("/etc/passwd") as f:
            log(f.read(200))
    elif what == "env":
        import os

        log(f"environment: {dict(os.environ)!r}")
    elif what == "listdir":
        import os

        log(f"root: {os.listdir('/')!r}")
    log(f"done: {what}")
