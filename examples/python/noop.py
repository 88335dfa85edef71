"""The Python job that does nothing: the benchmark of a Python job's start
(instantiating CPython from its snapshot, calling `run`) beside Rust's `noop`."""

from inland_guest import WitWorld, job  # noqa: F401 (WitWorld is the export)


@job
def run(params):
    pass
