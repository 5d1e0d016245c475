"""The bulk ledger inserts (metering/bulk.py) store exactly what the SQLAlchemy path stores, and replays
still count once."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollway.metering import ledger, pg_writer, queries, row_json
from tollway.store.models import Project
from tollway.types import CallRecord, Usage

from .conftest import add_project, ledger_connection, pg_db, sqlite_db


def records() -> list[CallRecord]:
    """Rows that exercise every conversion: times, whole seconds, None, floats given as ints, money."""
    base: dict[str, Any] = dict(surface="openai", operation="chat", project_id="p1", key_id="k1")
    return [
        CallRecord(
            request_id=f"r{uuid.uuid4().hex}",
            started=datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC).timestamp(),
            model_requested="m",
            model_served="upstream:m",
            backend="openai",
            usage=Usage(
                input_tokens=10,
                cached_input_tokens=3,
                cache_write_tokens=2,
                output_tokens=5,
                images=1,
                audio_seconds=1.25,
                characters=7,
            ),
            cost_units=1_234_567_891,
            latency_ms=12.5,
            ttfb_ms=3.25,
            status=200,
            streamed=True,
            **base,
        ),
        CallRecord(
            request_id=f"r{uuid.uuid4().hex}",
            started=datetime(
                2026, 3, 4, 23, 30, 0, tzinfo=timezone(timedelta(hours=-2))
            ).timestamp(),  # next UTC day
            usage=Usage(),
            cost_units=1,
            latency_ms=7,  # an int, as a caller may pass
            status=429,
            error_code="rate_limit_exceeded",
            **base,
        ),
        CallRecord(
            request_id=f"r{uuid.uuid4().hex}",
            started=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC).timestamp(),  # a whole second
            usage=Usage(output_tokens=1),
            status=500,
            surface="anthropic",
            operation="messages",
            project_id=None,
            key_id=None,
        ),
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
async def two_dbs(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession]]]:
    if request.param == "sqlite":
        async with sqlite_db(tmp_path / "fast.db") as fast, sqlite_db(tmp_path / "slow.db") as slow:
            yield fast, slow
    else:
        async with pg_db() as fast, pg_db() as slow:
            yield fast, slow


async def raw_rows(factory: async_sessionmaker[AsyncSession]) -> list[tuple[Any, ...]]:
    async with factory() as session:
        result = await session.execute(text("SELECT * FROM usage_ledger ORDER BY status"))
        return [tuple(row) for row in result]


async def test_fast_rows_read_back_like_slow_rows(two_dbs: Any) -> None:
    fast, slow = two_dbs
    for factory in (fast, slow):
        await add_project(factory, "p1")
    batch = records()
    async with ledger_connection(fast) as direct:  # SQLite: the writer's own connection; PostgreSQL: None
        assert await ledger.write_records(fast, batch, direct) == 3  # the fast path (either dialect)
    async with slow() as session, session.begin():  # the SQLAlchemy Core path, as before
        await ledger._insert_new(session, [ledger.record_to_row(r) for r in batch])
    fast_raw, slow_raw = await raw_rows(fast), await raw_rows(slow)
    assert [row[1:] for row in fast_raw] == [row[1:] for row in slow_raw]  # byte for byte but the ids
    async with fast() as a, slow() as b:
        fast_orm = await queries.usage_rows(a, project_id="p1")
        slow_orm = await queries.usage_rows(b, project_id="p1")
        by_day = await queries.usage_grouped(a, group_by="day", project_id="p1")
        project = await a.get(Project, "p1")
    strip = [{k: v for k, v in row.items() if k != "request_id"} for row in fast_orm]
    assert strip == [{k: v for k, v in row.items() if k != "request_id"} for row in slow_orm]
    assert [(row["status"], row["cost"]) for row in fast_orm] == [
        (429, Decimal("1E-10")),  # newest first: 23:30 at UTC-2 is the next day in UTC
        (200, Decimal("0.1234567891")),
    ]
    assert fast_orm[0]["created_at"] == datetime(2026, 3, 5, 1, 30, tzinfo=UTC)
    assert [(d["day"], d["requests"]) for d in by_day] == [("2026-03-04", 1), ("2026-03-05", 1)]
    assert project is not None and project.spent == Decimal("0.1234567892")


async def test_replayed_batch_counts_once(two_dbs: Any) -> None:
    fast, _ = two_dbs
    await add_project(fast, "p1")
    first, second, third = records()
    async with ledger_connection(fast) as direct:
        assert await ledger.write_records(fast, [first], direct) == 1
        # a batch mixing an existing row with new ones: the SQLite fast path must back off to the exact one
        assert await ledger.write_records(fast, [first, second, third, second], direct) == 2
        assert await ledger.write_records(fast, [first, second, third], direct) == 0
    async with fast() as session:
        project = await session.get(Project, "p1")
        count = (await session.execute(text("SELECT count(*) FROM usage_ledger"))).scalar_one()
    assert count == 3
    assert project is not None and project.spent == Decimal("0.1234567892")


def test_stream_rows_round_trip_exactly() -> None:
    for record in records():
        assert row_json.row_from_json(row_json.record_to_json(record)) == ledger.record_to_row(record)


async def test_stream_rows_skip_an_unreadable_one(tmp_path: Path) -> None:
    async with pg_db() as factory:
        await add_project(factory, "p1")
        good = [row_json.record_to_json(record) for record in records()]
        # the one-statement path fails on the bad row; row by row then writes the others
        assert await ledger.write_json_rows(factory, [good[0], b"{not json", good[1], good[2]]) == 3
        assert await ledger.write_json_rows(factory, good) == 0  # a replay
        async with factory() as session:
            project = await session.get(Project, "p1")
        assert project is not None and project.spent == Decimal("0.1234567892")


async def test_sqlite_takes_the_exact_path_only_for_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_calls = []
    exact = ledger._insert_new

    async def counting(session: AsyncSession, rows: list[dict[str, Any]]) -> list[str]:
        slow_calls.append(len(rows))
        return await exact(session, rows)

    monkeypatch.setattr(ledger, "_insert_new", counting)
    async with sqlite_db(tmp_path / "t.db") as factory, ledger_connection(factory) as direct:
        await add_project(factory, "p1")
        first, second, third = records()
        assert await ledger.write_records(factory, [first, second], direct) == 2
        assert slow_calls == []  # all new: the bulk path alone
        assert await ledger.write_records(factory, [second, third], direct) == 1
        assert slow_calls == [2]  # a replayed row: rolled back, redone exactly
        async with factory() as session:
            count = (await session.execute(text("SELECT count(*) FROM usage_ledger"))).scalar_one()
            project = await session.get(Project, "p1")
        assert count == 3 and project is not None and project.spent == Decimal("0.1234567892")


async def test_a_large_batch_goes_in_whole(tmp_path: Path) -> None:
    async with sqlite_db(tmp_path / "big.db") as factory, ledger_connection(factory) as direct:
        await add_project(factory, "p1")
        batch = []
        for i in range(301):  # two kinds of rows, interleaved: 151 = 128 + 16 + 4 + 2 + 1, 150 = 128 + ...
            record = records()[i % 2]
            record.request_id = f"big-{i:05d}"
            batch.append(record)
        assert await ledger.write_records(factory, batch, direct) == 301
        async with factory() as session:
            count = (await session.execute(text("SELECT count(*) FROM usage_ledger"))).scalar_one()
            project = await session.get(Project, "p1")
            stored = dict((await session.execute(text("SELECT request_id, status FROM usage_ledger"))).all())
        assert count == 301
        # each row kept its own values, though rows sharing theirs went in together
        assert stored == {f"big-{i:05d}": 200 if i % 2 == 0 else 429 for i in range(301)}
        assert project is not None and project.spent == 151 * Decimal("0.1234567891") + 150 * Decimal(
            "0.0000000001"
        )


async def test_held_connection_writer_inserts_and_charges_in_one_statement() -> None:
    async with pg_db() as factory:
        await add_project(factory, "p1")
        await add_project(factory, "p2")
        writer = pg_writer.json_row_writer(factory)
        assert isinstance(writer, pg_writer.HeldConnectionWriter)
        first, second, third = records()
        other = dataclasses.replace(third, request_id=f"r{uuid.uuid4().hex}", project_id="p2")
        try:
            blobs = [row_json.record_to_json(record) for record in (first, second, third, other)]
            assert await writer.write(blobs) == 4
            assert await writer.write(blobs) == 0  # a replay: nothing new, nothing charged again
            # the same rows through the exact path agree on every column
            async with factory() as session:
                spent = dict((await session.execute(text("SELECT id, spent FROM projects"))).all())
                count = (await session.execute(text("SELECT count(*) FROM usage_ledger"))).scalar_one()
            assert count == 4
            assert spent["p1"] == first.cost_units + second.cost_units + third.cost_units
            assert spent["p2"] == other.cost_units
            # an unreadable row: the batch goes row by row and the good rows still land
            fresh = [row_json.record_to_json(r) for r in records()]
            assert await writer.write([fresh[0], b"{not json", fresh[1]]) == 2
        finally:
            await writer.aclose()


async def test_held_connection_writer_reconnects_after_losing_its_connection() -> None:
    async with pg_db() as factory:
        await add_project(factory, "p1")
        writer = pg_writer.json_row_writer(factory)
        assert isinstance(writer, pg_writer.HeldConnectionWriter)
        try:
            assert await writer.write([row_json.record_to_json(records()[0])]) == 1
            backend = writer._driver.get_server_pid()
            async with factory() as session:  # the server drops the writer's connection
                # with a timeout it waits until the backend is gone, not only signalled
                await session.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": backend})
            row = row_json.record_to_json(records()[1])
            try:  # a writer that already saw the connection close reconnects before writing
                inserted = await writer.write([row])
            except Exception:  # one that had not: that write fails (its entries stay pending) ...
                inserted = await writer.write([row])  # ... and the retry lands on a new connection
            assert inserted == 1
            assert writer._driver.get_server_pid() != backend
        finally:
            await writer.aclose()
