"""Admin queries over the ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollway.metering import ledger
from tollway.metering.queries import rows_to_csv, rows_to_jsonl, usage_grouped, usage_rows
from tollway.money import to_units
from tollway.types import CallRecord, Usage

from .conftest import add_project, pg_db, sqlite_db

DAY1 = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
DAY2 = DAY1 + timedelta(hours=1)


@pytest.fixture(params=["sqlite", "postgresql"])
async def factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    db = sqlite_db(tmp_path / "q.db") if request.param == "sqlite" else pg_db()
    async with db as session_factory:
        await add_project(session_factory, "p1")
        rows = [
            _row("r1", DAY1, "k1", "m-a", "0.1000000001", 10, 5, 200, 100.0),
            _row("r2", DAY1, "k1", "m-b", "0.2000000002", 20, 7, 200, 200.0),
            _row("r3", DAY2, "k2", "m-a", "0.0000000003", 30, 0, 429, 3.0),
        ]
        await ledger.write_rows(session_factory, rows)
        yield session_factory


def _row(
    rid: str, when: datetime, key: str, model: str, cost: str, tin: int, tout: int, status: int, ms: float
) -> ledger.Row:
    record = CallRecord(
        request_id=rid,
        surface="openai",
        operation="chat",
        started=when.timestamp(),
        project_id="p1",
        key_id=key,
        model_requested=model,
        model_served=model,
        usage=Usage(input_tokens=tin, output_tokens=tout),
        cost_units=to_units(Decimal(cost)),
        latency_ms=ms,
        status=status,
    )
    return ledger.record_to_row(record)


async def test_rows_filter_and_page(factory: async_sessionmaker[AsyncSession]) -> None:
    async with factory() as session:
        rows = await usage_rows(session, project_id="p1")
        assert [r["request_id"] for r in rows] == ["r3", "r1", "r2"]
        assert rows[0]["created_at"] == DAY2
        assert rows[1]["cost"] == Decimal("0.1000000001")
        assert [r["request_id"] for r in await usage_rows(session, key_id="k1", model="m-b")] == ["r2"]
        assert [r["request_id"] for r in await usage_rows(session, since=DAY2)] == ["r3"]
        assert [r["request_id"] for r in await usage_rows(session, until=DAY2, limit=1, offset=1)] == ["r2"]


async def test_grouped(factory: async_sessionmaker[AsyncSession]) -> None:
    async with factory() as session:
        by_model = await usage_grouped(session, group_by="model")
        assert [(g["model"], g["requests"], g["cost"], g["errors"]) for g in by_model] == [
            ("m-a", 2, Decimal("0.1000000004"), 1),
            ("m-b", 1, Decimal("0.2000000002"), 0),
        ]
        by_key = {g["key"]: g for g in await usage_grouped(session, group_by="key", project_id="p1")}
        assert by_key["k1"]["input_tokens"] == 30 and by_key["k1"]["output_tokens"] == 12
        assert by_key["k1"]["avg_latency_ms"] == 150.0
        by_day = await usage_grouped(session, group_by="day")
        assert [(g["day"], g["requests"]) for g in by_day] == [("2026-03-01", 2), ("2026-03-02", 1)]


async def test_exports(factory: async_sessionmaker[AsyncSession]) -> None:
    async with factory() as session:
        rows = await usage_rows(session)
    parsed = list(csv.DictReader(io.StringIO(rows_to_csv(rows))))
    assert parsed[1]["cost"] == "0.1000000001" and parsed[1]["created_at"].startswith("2026-03-01T23:30")
    lines = [orjson.loads(line) for line in rows_to_jsonl(rows).splitlines()]
    assert lines[0]["cost"] == "0.0000000003" and lines[0]["status"] == 429
    assert rows_to_csv([]) == "" and rows_to_jsonl([]) == ""


async def test_replayed_batch_counts_once(factory: async_sessionmaker[AsyncSession]) -> None:
    again = [_row("r1", DAY1, "k1", "m-a", "0.1000000001", 10, 5, 200, 100.0)]
    assert await ledger.write_rows(factory, again + again) == 0
    assert await ledger.durable_balance(factory, "p1") == -Decimal("0.3000000006")
