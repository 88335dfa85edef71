"""inland-guest for Python: write an Inland job in Python.

A job is a function marked ``@job``; the app module re-exports ``WitWorld``
so componentize-py finds the entry point::

    from inland_guest import WitWorld, emit, job, log, query

    @job
    def run(params):
        result = query("SELECT district, count(*) AS n FROM residents "
                       "WHERE age >= $min_age GROUP BY district",
                       min_age=params.get("min_age", 0, int))
        emit("district_counts", result.columns, result)

Build it (``--stub-wasi`` is required: a job may not import files, sockets
or the environment, and admission refuses a component that does)::

    componentize-py -d guest-sdk/wit -w job componentize --stub-wasi \\
        -p . -p guest-sdk/python app -o job.wasm

Rows cross as Python values: ``None``, ``bool``, ``int``, ``float``,
``str`` and ``datetime.date``. Python in a component cannot load native
extensions such as pyarrow, so this package reads rows (typed cells) and
emits them (one JSON buffer per batch); the host converts them to and from
Arrow and checks every cell.
"""

import datetime
import json
import math
import traceback
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import wit_world
from componentize_py_types import Err
from wit_world.imports import host

__all__ = [
    "Column",
    "InlandError",
    "Params",
    "Result",
    "WitWorld",
    "datasets",
    "emit",
    "job",
    "log",
    "query",
]

Column = host.Column
"""A column: ``name``, ``data_type`` (as Arrow prints it: ``Int64``,
``Float64``, ``Utf8``, ``Date32``, ``Boolean``) and ``nullable``."""

_EPOCH = datetime.date(1970, 1, 1)


class InlandError(Exception):
    """The host did not answer: ``kind`` is ``refused`` (a domain rule, named
    in the message), ``invalid``, ``limit`` or ``internal``."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


def _error(e: Err) -> InlandError:
    kinds = {
        host.Error_Refused: "refused",
        host.Error_Invalid: "invalid",
        host.Error_Limit: "limit",
        host.Error_Internal: "internal",
    }
    value = e.value
    return InlandError(kinds.get(type(value), "internal"), getattr(value, "value", str(value)))


def _call(f: Callable, *args):
    try:
        return f(*args)
    except Err as e:
        raise _error(e) from None


def _value(cell) -> Any:
    if isinstance(cell, host.Cell_Null):
        return None
    if isinstance(cell, host.Cell_Date):
        return _EPOCH + datetime.timedelta(days=cell.value)
    return cell.value


def _json_cell(v: Any) -> Any:
    # bool before int: True is an int to Python. Dates cross as days.
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise InlandError("invalid", "a cell is NaN or infinite; outputs hold finite numbers")
        return v
    if isinstance(v, datetime.date):
        return (v - _EPOCH).days
    raise InlandError(
        "invalid", f"a cell is None, bool, int, float, str or datetime.date, not {type(v).__name__}"
    )


def _bound(v: Any):
    if v is None:
        return host.Value_Null()
    if isinstance(v, bool):
        return host.Value_Boolean(v)
    if isinstance(v, int):
        return host.Value_Integer(v)
    if isinstance(v, float):
        return host.Value_Float(v)
    if isinstance(v, str):
        return host.Value_Text(v)
    raise TypeError(f"a bound value is None, bool, int, float or str, not {type(v).__name__}")


class Result:
    """A query's result, read batch by batch: iterate it for rows (tuples)."""

    def __init__(self, rows: "host.Rows"):
        self._rows = rows
        self.columns: List[Column] = rows.columns()
        """The result's columns; pass them to :func:`emit` to keep its schema."""

    @property
    def names(self) -> List[str]:
        return [c.name for c in self.columns]

    def notices(self) -> List[str]:
        """What the host did to this result for the domain (suppressed groups, ...)."""
        return self._rows.notices()

    def batches(self) -> Iterator[List[tuple]]:
        """The rows a batch at a time."""
        while True:
            batch = _call(self._rows.next_rows)
            if batch is None:
                return
            yield [tuple(_value(c) for c in row) for row in batch]

    def __iter__(self) -> Iterator[tuple]:
        for batch in self.batches():
            yield from batch

    def all(self) -> List[tuple]:
        """Every remaining row."""
        return list(self)


def query(sql: str, **params: Any) -> Result:
    """Runs one read-only query. ``$name`` placeholders are bound by the host
    from ``params`` after parsing: a value is compared as a value, never read
    as SQL."""
    if not params:
        return Result(_call(host.query, sql))
    statement = host.Statement(sql)
    for name, value in params.items():
        _call(statement.bind, name, _bound(value))
    return Result(_call(statement.run))


def _column(c: Union[Column, Tuple[str, str], Tuple[str, str, bool]]) -> Column:
    if isinstance(c, host.Column):
        return c
    if len(c) == 2:
        return host.Column(name=c[0], data_type=c[1], nullable=True)
    return host.Column(name=c[0], data_type=c[1], nullable=bool(c[2]))


def emit(name: str, columns: Sequence, rows: Iterable[Sequence[Any]], batch_rows: int = 8192) -> None:
    """Hands an output table to the host, which keeps it in quarantine for the
    release gate. ``columns`` are :class:`Column` or ``(name, type[, nullable])``
    tuples; ``rows`` any iterable of sequences. Emitting the same name again
    appends rows."""
    declared = [_column(c) for c in columns]
    header = [[c.name, c.data_type, bool(c.nullable)] for c in declared]
    batch: List[List[Any]] = []
    sent = False

    def send() -> None:
        table = json.dumps({"columns": header, "rows": batch}, ensure_ascii=False, allow_nan=False)
        _call(host.emit_rows, name, table.encode("utf-8"))

    for row in rows:
        batch.append([_json_cell(v) for v in row])
        if len(batch) >= batch_rows:
            send()
            batch, sent = [], True
    if batch or not sent:
        send()


_LEVELS = {
    "debug": host.Level.DEBUG,
    "info": host.Level.INFO,
    "warn": host.Level.WARN,
    "error": host.Level.ERROR,
}


def log(message: str, level: str = "info") -> None:
    """One line of the job's log (kept in the domain; the operator never sees it)."""
    host.log(_LEVELS.get(level, host.Level.INFO), str(message))


def datasets() -> List["host.Dataset"]:
    """The datasets this job may query, with their columns."""
    return host.list_datasets()


class Params:
    """The submission's ``--param key=value`` pairs."""

    def __init__(self, pairs: List[Tuple[str, str]]):
        self._map = dict(pairs)

    def get(self, key: str, default: Any = None, convert: Optional[Callable[[str], Any]] = None) -> Any:
        """The value of ``key`` converted by ``convert`` (e.g. ``int``), or ``default``."""
        raw = self._map.get(key)
        if raw is None:
            return default
        if convert is None:
            return raw
        try:
            return convert(raw)
        except (TypeError, ValueError):
            raise InlandError("invalid", f"parameter `{key}` is not a valid {getattr(convert, '__name__', 'value')}")

    def require(self, key: str, convert: Optional[Callable[[str], Any]] = None) -> Any:
        """Like :meth:`get`, but a missing ``key`` fails the job, naming it."""
        if key not in self._map:
            raise InlandError("invalid", f"missing parameter `{key}`")
        return self.get(key, None, convert)

    def items(self):
        return self._map.items()


_JOB: Optional[Callable[[Params], None]] = None


def job(f: Callable[[Params], None]) -> Callable[[Params], None]:
    """Marks the job's entry point: ``f(params)``; raising fails the job."""
    global _JOB
    _JOB = f
    return f


class WitWorld(wit_world.WitWorld):
    """The component's export; re-export it from the app module."""

    def run(self, params: List[Tuple[str, str]]) -> None:
        if _JOB is None:
            raise Err("no function is marked @job")
        try:
            _JOB(Params(params))
        except InlandError as e:
            raise Err(str(e))
        except Err:
            raise
        except Exception:
            # The traceback stays in the domain with the job's record.
            raise Err(traceback.format_exc(limit=8))
