"""The embedded ledger writer's own SQLite connection (`sqlite_writer`): a failed batch leaves nothing
behind, and it exists only for a SQLite file. Its rows and replays are checked in test_bulk."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollway.metering import bulk, ledger
from tollway.metering.sqlite_writer import SqliteLedgerConnection
from tollway.store.models import Project

from .conftest import add_project, pg_db, sqlite_db
from .test_bulk import records


async def totals(factory: async_sessionmaker[AsyncSession]) -> tuple[int, Decimal]:
    async with factory() as session:
        count = (await session.execute(text("SELECT count(*) FROM usage_ledger"))).scalar_one()
        project = await session.get(Project, "p1")
    assert project is not None
    return count, project.spent


async def test_a_failed_batch_leaves_no_transaction_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sqlite_db(tmp_path / "t.db") as factory:
        await add_project(factory, "p1")
        direct = SqliteLedgerConnection.for_factory(factory)
        assert direct is not None
        first, second, third = records()
        insert = bulk.insert_and_charge

        def fails_after_inserting(connection: sqlite3.Connection, rows: bulk.SqliteRows) -> int:
            insert(connection, rows)
            raise OSError("disk full")

        try:
            monkeypatch.setattr(bulk, "insert_and_charge", fails_after_inserting)
            with pytest.raises(OSError):
                await ledger.write_records(factory, [first], direct)
            monkeypatch.setattr(bulk, "insert_and_charge", insert)
            assert await totals(factory) == (0, Decimal(0))  # rolled back, and the lock given up
            assert await ledger.write_records(factory, [first, second, third], direct) == 3
            assert await totals(factory) == (3, Decimal("0.1234567892"))
        finally:
            await direct.aclose()


async def test_only_for_a_sqlite_file(tmp_path: Path) -> None:
    async with sqlite_db(tmp_path / "t.db") as file_db, pg_db() as postgres_db:
        direct = SqliteLedgerConnection.for_factory(file_db)
        assert direct is not None
        await direct.aclose()
        assert SqliteLedgerConnection.for_factory(postgres_db) is None


async def test_closing_after_abandoning_is_quiet(tmp_path: Path) -> None:
    async with sqlite_db(tmp_path / "t.db") as factory:
        await add_project(factory, "p1")
        direct = SqliteLedgerConnection.for_factory(factory)
        assert direct is not None
        assert await ledger.write_records(factory, records()[:1], direct) == 1
        direct.abandon()  # as a kill -9 in the tests that simulate one, then the usual teardown
        await direct.aclose()
