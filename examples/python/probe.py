"""A Python job for tests. With `--param sql=...` it runs the SQL and emits
the result as `probe` (what the Rust `sql-probe` does), and with `leak=1`
as well it writes the first row's values everywhere a job can write (its
log, an output's name and its error), as a hostile job would; with
`--param try=socket|file|env|listdir` it tries what a hostile job would: the
network, a file of the host, the environment, the file system, and logs
what it got. Inland must give it nothing."""

from inland_guest import WitWorld, emit, job, log, query  # noqa: F401 (WitWorld is the export)


@job
def run(params):
    sql = params.get("sql")
    if sql is not None:
        result = query(sql)
        if params.get("leak") is None:
            emit("probe", result.columns, result)
            return
        # (stdout and stderr are stubbed out: writing to them traps.)
        first = "/".join(str(v) for v in next(iter(result), ()))
        log(f"read: {first}")
        emit(f"named {first}", result.columns, result)
        raise RuntimeError(f"error: {first}")
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
