"""Bulk ledger inserts that skip SQLAlchemy's per-row parameter processing: the ledger writer runs in the
gateway process, so every microsecond a row costs here is a microsecond taken from serving calls.

Measured on the 2-CPU sandbox (bench/metering_micro.py): SQLAlchemy's "insertmanyvalues" costs ~25-33 µs
a row on SQLite and ~25 µs on PostgreSQL (building, processing and flattening a parameter dict per row).

* SQLite: the ledger writer's own connection (`sqlite_writer`) runs multi-row
  `INSERT OR IGNORE ... SELECT ... FROM (VALUES (...), (...))` statements (the values rows share bound
  once per statement) with plain values converted exactly as
  SQLAlchemy would store them (money as integer 1e-10 units, times as naive-UTC
  'YYYY-MM-DD HH:MM:SS.ffffff' text). SQLite cannot say *which* rows such an insert skipped, so the
  row count tells whether all were new; if not (a replay: rare), the writer rolls the batch back and
  it is redone on the exact path (`ledger.write_rows`).
* PostgreSQL: one statement, `INSERT ... SELECT FROM jsonb_to_recordset(<the rows as one JSON array>)
  ON CONFLICT DO NOTHING RETURNING ...`: one parameter, the server parses the rows. The drainer passes
  the stream's JSON entries through without decoding them. (unnest() of one array per column was tried:
  asyncpg spends ~15 µs a row type-checking array elements.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any, cast

import orjson
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession

from tollway.metering.timetext import sqlite_time_of
from tollway.money import to_dollars
from tollway.store.models import UsageRow
from tollway.types import CallRecord

_TABLE = cast(Table, UsageRow.__table__)
COLUMNS: tuple[str, ...] = tuple(column.name for column in _TABLE.columns)

# The columns that change from call to call, in the order `SqliteRows` writes them; the other 15 (project,
# key, surface, operation, models, backend, status, the zero counts of a chat call...) repeat across a
# batch, and are bound once per group of rows sharing them instead of once per row: binding a value costs
# sqlite3 ~70 ns (a type check, a copy, the connection's mutex), 15 of them ~1 µs a row (measured: 4.3 ->
# 3.6 µs a row, insert and commit included).
VARYING: tuple[str, ...] = (
    "request_id", "created_at", "input_tokens", "output_tokens", "cost", "latency_ms", "ttfb_ms"
)  # fmt: skip
SHARED: tuple[str, ...] = tuple(name for name in COLUMNS if name not in VARYING)

# Many rows per statement, `INSERT ... SELECT <the shared values>, <a row's varying ones> FROM (VALUES
# (...), (...))`: one sqlite3 call per chunk instead of one per row (an `executemany` steps, and releases
# and retakes the GIL, once per row: on the gateway's single core that costs a thread switch per row).
# Chunks are powers of two, so a group uses at most 9 statements, all kept in sqlite3's statement cache.
_SQLITE_CHUNKS = (256, 128, 64, 32, 16, 8, 4, 2, 1)
_ROW_MARKS = "(" + ", ".join("?" * len(VARYING)) + ")"
_SQLITE_INSERTS = {
    n: f"INSERT OR IGNORE INTO usage_ledger ({', '.join(VARYING + SHARED)}) "
    f"SELECT {', '.join(f'column{i + 1}' for i in range(len(VARYING)))}, {', '.join('?' * len(SHARED))} "
    "FROM (VALUES " + ", ".join([_ROW_MARKS] * n) + ")"
    for n in _SQLITE_CHUNKS
}

_SQLITE_CHARGE = "UPDATE projects SET spent = spent + ? WHERE id = ?"  # money columns are integer units

# PostgreSQL type of each column as jsonb_to_recordset reads it (money: the exact decimal string)
_PG_TYPES = {
    "created_at": "timestamptz",
    "input_tokens": "integer",
    "cached_input_tokens": "integer",
    "cache_write_tokens": "integer",
    "output_tokens": "integer",
    "images": "integer",
    "characters": "integer",
    "status": "integer",
    "audio_seconds": "float8",
    "latency_ms": "float8",
    "ttfb_ms": "float8",
    "cost": "numeric",
    "streamed": "boolean",
}
_PG_VALUES = {"cost": "(r.cost * 10000000000)::bigint"}  # dollars -> integer 1e-10 units, exact


def _pg_insert(rows_param: str) -> str:
    return (
        f"INSERT INTO usage_ledger ({', '.join(COLUMNS)}) "
        f"SELECT {', '.join(_PG_VALUES.get(name, f'r.{name}') for name in COLUMNS)} "
        f"FROM jsonb_to_recordset(CAST({rows_param} AS jsonb)) AS r("
        + ", ".join(f"{name} {_PG_TYPES.get(name, 'text')}" for name in COLUMNS)
        + ") ON CONFLICT (request_id) DO NOTHING RETURNING project_id, cost"
    )


_PG_INSERT = text(_pg_insert(":rows"))

# The drainer's statement (asyncpg, one positional parameter): insert the new rows AND add their costs
# to their projects' `spent`, in one statement, so one round trip and no transaction block; it returns
# how many rows were new. Returning per-project totals instead of a row per call saves ~10 µs a row of
# client-side result processing. Projects are updated in id order: two replicas charging the same
# projects take their row locks in the same order (a deadlock would only cost a retry: the entries
# stay pending until written).
PG_INSERT_AND_CHARGE = (
    f"WITH inserted AS ({_pg_insert('$1')}), "
    "totals AS (SELECT project_id, sum(cost) AS total, count(*) AS n FROM inserted GROUP BY project_id), "
    "charged AS (UPDATE projects SET spent = projects.spent + t.total "
    "FROM (SELECT * FROM totals WHERE project_id IS NOT NULL AND total <> 0 ORDER BY project_id) t "
    "WHERE projects.id = t.project_id RETURNING projects.id) "
    "SELECT coalesce(sum(n), 0)::int AS inserted, (SELECT count(*) FROM charged) AS charged FROM totals"
)


class SqliteRows:
    """Ledger rows as SQLite stores them (see `ledger.record_to_row`), grouped by the values of their
    `SHARED` columns: per group, the `VARYING` values of its rows in one flat list (no tuple per row to
    flatten later); and each project's total."""

    __slots__ = ("count", "groups", "spent")

    def __init__(self, records: list[CallRecord]) -> None:
        self.count = len(records)
        self.spent: dict[str, int] = {}  # project id -> cost units of its rows
        self.groups: dict[tuple[Any, ...], list[Any]] = {}  # SHARED values -> VARYING values, row after row
        groups, spent = self.groups, self.spent
        for record in records:
            usage = record.usage
            shared = (
                record.project_id,
                record.key_id,
                record.surface,
                record.operation,
                record.model_requested,
                record.model_served,
                record.backend,
                usage.cached_input_tokens,
                usage.cache_write_tokens,
                usage.images,
                usage.audio_seconds,  # REAL columns: SQLite stores an int bound here as a float
                usage.characters,
                record.status,
                record.error_code,
                1 if record.streamed else 0,
            )  # fmt: skip
            varying = groups.get(shared)
            if varying is None:
                varying = groups[shared] = []
            varying.extend((
                record.request_id,
                sqlite_time_of(record.started),
                usage.input_tokens,
                usage.output_tokens,
                record.cost_units,
                record.latency_ms,
                record.ttfb_ms,
            ))  # fmt: skip
            if record.project_id and record.cost_units:
                spent[record.project_id] = spent.get(record.project_id, 0) + record.cost_units

    def charges(self) -> list[tuple[int, str]]:
        """(units, project id) for the `spent` update, in project id order: one lock order."""
        return [(units, project_id) for project_id, units in sorted(self.spent.items())]


def insert_and_charge(conn: sqlite3.Connection, rows: SqliteRows) -> int:
    """Inserts the rows and, when all were new, charges their projects; returns how many were new.
    Runs in the connection's thread, inside the caller's transaction."""
    inserted = 0
    for statement, parameters in _insert_statements(rows, conn):
        inserted += conn.execute(statement, parameters).rowcount
    if inserted == rows.count:  # else the caller rolls the transaction back
        conn.executemany(_SQLITE_CHARGE, rows.charges())
    return inserted


def _insert_statements(rows: SqliteRows, conn: sqlite3.Connection) -> Iterator[tuple[str, list[Any]]]:
    """(statement, parameters) covering the rows, group by group, largest chunks first, within the
    connection's limit on bound variables (32,766 by default since SQLite 3.32, 999 before)."""
    width = len(VARYING)
    most = (conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - len(SHARED)) // width
    for shared, varying in rows.groups.items():
        count, start = len(varying) // width, 0
        for size in _SQLITE_CHUNKS:
            if size > most:
                continue
            while count - start >= size:
                yield _SQLITE_INSERTS[size], [*shared, *varying[start * width : (start + size) * width]]
                start += size


async def postgres_insert(session: AsyncSession, rows_json: bytes) -> list[tuple[str | None, Decimal]]:
    """Inserts the rows (a JSON array of ledger rows, `row_json.record_to_json` objects) whose request id is
    new, in one statement; returns (project id, cost) of those inserted. A request id repeated within
    the array is inserted once."""
    result = await session.execute(_PG_INSERT, {"rows": rows_json.decode()})
    return [(project_id, to_dollars(int(units))) for project_id, units in result]


def rows_json(rows: Iterable[dict[str, Any]]) -> bytes:
    """Ledger rows (`ledger.record_to_row` dicts) as one JSON array for `postgres_insert`."""
    return orjson.dumps(list(rows), default=_decimal, option=orjson.OPT_NAIVE_UTC)


def _decimal(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)  # exact; PostgreSQL's numeric input reads exponents too
    raise TypeError(f"cannot serialise {type(value).__name__}")
