"""The usage ledger and the credit book in SQL: batched, replay-safe ledger writes and credit grants.

Every write that changes money also moves the project's running totals in the *same transaction*:
ledger rows add their costs to `Project.spent` (only the rows actually inserted: the insert is
`ON CONFLICT (request_id) DO NOTHING ... RETURNING`, so replaying a batch never counts twice), and a
credit entry adds to `Project.credited`. A durable balance is therefore `credited - spent`, one row read.
Money columns are integers of 1e-10 dollars (`store.models.Money`), so the SQL additions and sums are
exact on SQLite and PostgreSQL alike. The hot inserts skip SQLAlchemy's per-row work (`bulk`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollway.background import stop_task
from tollway.errors import InvalidRequest, NotFound
from tollway.logs import warn_failure
from tollway.metering import bulk
from tollway.metering.row_json import row_from_json, row_with
from tollway.metering.sqlite_writer import SqliteLedgerConnection
from tollway.money import MAX_CREDIT, MAX_CREDIT_UNITS, credit_amount_problem, to_dollars, to_units
from tollway.store.models import CreditEntry, Project, UsageRow
from tollway.types import CallRecord

log = logging.getLogger("tollway.metering.ledger")

Row = dict[str, Any]
SessionFactory = async_sessionmaker[AsyncSession]


def record_to_row(record: CallRecord) -> Row:
    """The `usage_ledger` column values of one call (times in UTC)."""
    return row_with(record, datetime.fromtimestamp(record.started, UTC), to_dollars(record.cost_units))


async def write_records(
    session_factory: SessionFactory, records: list[CallRecord], direct: SqliteLedgerConnection | None = None
) -> int:
    """`write_rows` for finished calls. With `direct` (the database is a SQLite file) the rows go in
    through the bulk fast path (`bulk`, in one hop to its thread), which only works when every row is
    new; a batch with an existing request id (a replay) is rolled back and redone on the exact path."""
    unique = list({record.request_id: record for record in records}.values())
    if not unique:
        return 0
    if direct is not None and await direct.insert(bulk.SqliteRows(unique)):
        return len(unique)
    return await write_rows(session_factory, [record_to_row(record) for record in unique])


async def write_rows(session_factory: SessionFactory, rows: list[Row]) -> int:
    """Inserts the rows that are new and adds their costs to their projects' `spent`, in one
    transaction. Returns how many rows were new."""
    unique = list({row["request_id"]: row for row in rows}.values())  # a replay may repeat an id
    if not unique:
        return 0
    async with session_factory() as session, session.begin():
        new: list[tuple[str | None, Decimal]]
        if _dialect(session) == "postgresql":
            new = await bulk.postgres_insert(session, bulk.rows_json(unique))
        else:
            inserted = set(await _insert_new(session, unique))
            new = [(row["project_id"], row["cost"]) for row in unique if row["request_id"] in inserted]
        await _add_spent(session, new)
        return len(new)


async def write_json_rows(session_factory: SessionFactory, blobs: list[bytes]) -> int:
    """`write_rows` for rows as the stream carries them (`row_json.record_to_json`). On PostgreSQL they
    go to the database undecoded; elsewhere, or if that batch fails (an unreadable row), row by row,
    dropping (and logging) the rows that cannot be read rather than blocking the stream forever."""
    if not blobs:
        return 0
    if _factory_dialect(session_factory) == "postgresql":
        try:
            async with session_factory() as session, session.begin():
                new = await bulk.postgres_insert(session, b"[" + b",".join(blobs) + b"]")
                await _add_spent(session, new)
                return len(new)
        except Exception as exc:
            log.warning("ledger_bulk_write_failed", exc_info=exc)
    rows = []
    for blob in blobs:
        try:
            rows.append(row_from_json(blob))
        except Exception as exc:
            log.error("ledger_entry_unreadable", extra={"row": blob[:200]}, exc_info=exc)
    return await write_rows(session_factory, rows)


async def _add_spent(session: AsyncSession, costs: Iterable[tuple[str | None, Decimal]]) -> None:
    spent: dict[str, Decimal] = defaultdict(Decimal)
    for project_id, cost in costs:
        if project_id and cost:
            spent[project_id] += cost
    for project_id, amount in sorted(spent.items()):  # one lock order: no deadlocks between replicas
        await _add_to_total(session, project_id, "spent", amount)


async def _insert_new(session: AsyncSession, rows: list[Row]) -> list[str]:
    """Inserts the rows whose request id is new; returns those ids: the exact, general path (SQLite
    replays; PostgreSQL uses `bulk.postgres_insert`). The Core table and a list of parameter sets
    (SQLAlchemy's "insertmanyvalues") cost ~17-33 µs a row on SQLite; the ORM entity with
    `.values(rows)` cost 400."""
    insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    table = cast(Table, UsageRow.__table__)
    statement = (
        insert(table).on_conflict_do_nothing(index_elements=["request_id"]).returning(table.c.request_id)
    )
    return list((await session.execute(statement, rows)).scalars())


async def _add_to_total(
    session: AsyncSession, project_id: str, column: str, amount: Decimal, *, bounded: bool = False
) -> bool:
    """Adds `amount` to `projects.<column>` in SQL (exact: money columns are integer units on both
    databases, and concurrent replicas cannot lose an update); False when the project does not exist or,
    `bounded`, when the total would leave ±MAX_CREDIT. That bound is checked on the old total in the same
    statement (no overflowing sum is ever computed: SQLite would make it a float, PostgreSQL refuse it),
    so concurrent grants cannot pass it together."""
    target = getattr(Project, column)
    condition = Project.id == project_id
    if bounded:
        units = to_units(amount)
        low, high = to_dollars(-MAX_CREDIT_UNITS - units), to_dollars(MAX_CREDIT_UNITS - units)
        condition = condition & target.between(low, high)
    statement = update(Project).where(condition).values({column: target + amount})
    # No ORM session synchronisation: these sessions hold no Project objects, and evaluating the
    # statement against the identity map costs ~40 µs of CPU per UPDATE (~250 µs without it).
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def add_credit(
    session_factory: SessionFactory, project_id: str, amount: Decimal, note: str | None
) -> Decimal:
    """Records a credit entry and moves `credited`; returns the durable balance (credited - spent).
    Refuses (InvalidRequest) an amount `money.credit_amount_problem` rejects, or one that would take the
    project's credited total past `money.MAX_CREDIT` either way."""
    problem = credit_amount_problem(amount)
    if problem is not None:
        raise InvalidRequest(problem, param="amount")
    async with session_factory() as session, session.begin():
        if not await _add_to_total(session, project_id, "credited", amount, bounded=True):
            if await session.get(Project, project_id) is None:
                raise NotFound(f"project {project_id!r} does not exist")
            raise InvalidRequest(
                f"This grant would take the project's credited total past {MAX_CREDIT:,} dollars "
                "either way; adjust it down first.",
                param="amount",
            )
        session.add(
            CreditEntry(
                id=uuid.uuid4().hex, project_id=project_id, amount=amount, note=note, created_at=_now()
            )
        )
        return await _durable_balance(session, project_id) or Decimal(0)


async def durable_balance(session_factory: SessionFactory, project_id: str) -> Decimal | None:
    """credited - spent as the database has it (None for an unknown project)."""
    async with session_factory() as session:
        return await _durable_balance(session, project_id)


async def _durable_balance(session: AsyncSession, project_id: str) -> Decimal | None:
    query = select(Project.credited, Project.spent).where(Project.id == project_id)
    row = (await session.execute(query)).first()
    return None if row is None else (row[0] or Decimal(0)) - (row[1] or Decimal(0))


async def load_balances(session_factory: SessionFactory) -> dict[str, Decimal]:
    async with session_factory() as session:
        rows = await session.execute(select(Project.id, Project.credited, Project.spent))
        return {pid: (cred or Decimal(0)) - (spent or Decimal(0)) for pid, cred, spent in rows}


async def load_key_spend(session_factory: SessionFactory, key_id: str | None = None) -> dict[str, Decimal]:
    """Total ledger cost per key (one grouped query); only `key_id` when given."""
    query = select(UsageRow.key_id, cost_sum()).where(UsageRow.key_id.is_not(None))
    if key_id is not None:
        query = query.where(UsageRow.key_id == key_id)
    async with session_factory() as session:
        rows = await session.execute(query.group_by(UsageRow.key_id))
        return {kid: total or Decimal(0) for kid, total in rows if kid is not None}


def cost_sum() -> ColumnElement[Decimal]:
    """SUM(cost) in dollars: exact, the column being integer 1e-10 units (`store.models.Money`)."""
    return func.sum(UsageRow.cost)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _factory_dialect(session_factory: SessionFactory) -> str | None:
    bind = session_factory.kw.get("bind")
    return None if bind is None else str(bind.dialect.name)


def _now() -> datetime:
    return datetime.now(UTC)


class BatchWriter:
    """Collects finished calls in memory and writes them every `interval` seconds in one transaction.

    A failed write keeps its rows and is retried at the next tick. `lock` serialises this writer's
    transactions with the owner's other writes (credit grants), which SQLite needs."""

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        interval: float,
        lock: asyncio.Lock,
        on_error: Callable[[BaseException], None] | None = None,
    ):
        self._session_factory = session_factory
        self._interval = interval
        self._lock = lock
        self._pending: list[CallRecord] = []
        self._task: asyncio.Task[None] | None = None
        self._on_error = on_error
        self._direct: SqliteLedgerConnection | None = None  # a SQLite file's own connection, from start
        self._abandoned = False

    def append(self, record: CallRecord) -> None:
        # The row is built at flush time: conversion costs microseconds the hot path need not pay.
        self._pending.append(record)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._direct = SqliteLedgerConnection.for_factory(self._session_factory)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tollway-ledger-writer")

    async def aclose(self) -> None:
        await stop_task(self._task)
        self._task = None
        try:
            await self.flush()
        finally:
            if self._direct is not None:
                await self._direct.aclose()

    def abandon(self) -> None:
        """Stops and forgets unwritten rows, as a killed process would (tests only)."""
        self._abandoned = True  # a write in flight when the task is cancelled must not requeue its rows
        if self._task is not None:
            self._task.cancel()
        self._pending = []
        if self._direct is not None:
            self._direct.abandon()

    async def flush(self) -> None:
        async with self._lock:
            batch, self._pending = self._pending, []
            if self._abandoned:
                return
            try:
                await write_records(self._session_factory, batch, self._direct)
            except BaseException:
                if not self._abandoned:
                    self._pending[:0] = batch  # keep order; retried at the next tick
                raise

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if not self._pending:
                continue
            try:
                await self.flush()
            except Exception as exc:  # the database is down: keep the rows and try again
                warn_failure(log, "ledger_write_failed", exc)
                if self._on_error is not None:
                    self._on_error(exc)
