"""Fixtures for the metering suite: a fresh SQLite file or PostgreSQL schema per test, a random Redis
key prefix per test (deleted afterwards), a fake clock, and builders for admissions and call records."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from tollway.metering import Admission, MemoryMeter, RedisMeter, Ticket, rate_headers
from tollway.metering.sqlite_writer import SqliteLedgerConnection
from tollway.money import to_units
from tollway.store.models import Base, Project
from tollway.types import CallRecord, Limits, Usage

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


class FakeClock:
    def __init__(self, start: float = 10_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Harness:
    """One implementation under test, with what a test needs to reach behind it."""

    kind: str
    meter: Any
    factory: async_sessionmaker[AsyncSession]
    clock: FakeClock
    redis: Redis | None = None
    prefix: str = ""
    replicas: list[Any] = field(default_factory=list)

    async def restarted(self) -> Any:
        """A new meter over the durable state only: the database (memory), or PostgreSQL with an empty
        Redis (redis). Started; closed at teardown."""
        if self.redis is None:
            meter: Any = MemoryMeter(self.factory, clock=self.clock)
        else:
            meter = RedisMeter(self.redis, self.factory, prefix=f"{self.prefix}restart:", clock=self.clock)
        await meter.start()
        self.replicas.append(meter)
        return meter

    async def replica(self, **options: Any) -> Any:
        """Another process on the same state (Redis only), started; closed at teardown."""
        assert self.redis is not None
        options.setdefault("clock", self.clock)
        meter = RedisMeter(self.redis, self.factory, prefix=self.prefix, **options)
        await meter.start()
        self.replicas.append(meter)
        return meter


@contextlib.asynccontextmanager
async def sqlite_db(path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def ledger_connection(
    factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[SqliteLedgerConnection | None]:
    """The ledger writer's own connection to the factory's database (None unless a SQLite file), as
    `ledger.BatchWriter` opens it at start; closed afterwards."""
    direct = SqliteLedgerConnection.for_factory(factory)
    try:
        yield direct
    finally:
        if direct is not None:
            await direct.aclose()


@contextlib.asynccontextmanager
async def pg_db(schema: str | None = None) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A fresh PostgreSQL schema, dropped afterwards."""
    schema = schema or f"tw_meter_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_async_engine(PG_URL, connect_args={"server_settings": {"search_path": schema}})
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@contextlib.asynccontextmanager
async def redis_prefix(prefix: str | None = None) -> AsyncIterator[tuple[Redis, str]]:
    """A client and a random key prefix; every key under it is deleted afterwards."""
    # a blocking pool: a burst of concurrent admits waits for a connection instead of failing
    client = Redis.from_pool(BlockingConnectionPool.from_url(REDIS_URL, max_connections=64, timeout=10))
    prefix = prefix or f"twtest:{uuid.uuid4().hex[:12]}:"
    try:
        yield client, prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture(params=["memory", "redis", "redis-py"])
async def h(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """Each behaviour on the embedded meter, on the scale-out one and on the scale-out one without its
    lean client (scripts called through redis-py, as with TLS or a credential provider)."""
    if request.param in ("redis", "redis-py"):
        async with redis_harness(flush_interval=0.05, fast_client=request.param == "redis") as harness:
            yield harness
        return
    clock = FakeClock()
    async with sqlite_db(tmp_path / "tollway.db") as factory:
        await add_project(factory, "p1", credit_enforced=True)
        meter = MemoryMeter(factory, flush_interval=0.05, clock=clock)
        async with started(Harness("memory", meter, factory, clock)) as harness:
            yield harness


@contextlib.asynccontextmanager
async def redis_harness(**meter_options: Any) -> AsyncIterator[Harness]:
    """Replica A (the harness's meter) on a fresh PostgreSQL schema and Redis prefix, project p1."""
    async with pg_db() as factory, redis_prefix() as (client, prefix):
        await add_project(factory, "p1", credit_enforced=True)
        clock = FakeClock()
        meter = RedisMeter(client, factory, prefix=prefix, clock=clock, **meter_options)
        async with started(Harness("redis", meter, factory, clock, client, prefix)) as harness:
            yield harness


@contextlib.asynccontextmanager
async def started(harness: Harness) -> AsyncIterator[Harness]:
    """Starts the harness's meter; closes it and every replica a test started afterwards."""
    await harness.meter.start()
    try:
        yield harness
    finally:
        for replica in harness.replicas:
            await replica.aclose()
        await harness.meter.aclose()


async def add_project(
    factory: async_sessionmaker[AsyncSession], project_id: str, *, credit_enforced: bool = False
) -> None:
    async with factory() as session, session.begin():
        session.add(
            Project(
                id=project_id,
                name=f"project {project_id}",
                created_at=datetime.now(UTC),
                credit_enforced=credit_enforced,
                credited=Decimal(0),
                spent=Decimal(0),
            )
        )


def headers_of(ticket: Ticket) -> dict[str, str]:
    """The `x-ratelimit-*` headers the pipeline writes for an admitted call (`metering.headers`)."""
    return rate_headers(ticket.requests, ticket.tokens)


def admission(
    *,
    key: str = "k1",
    project: str = "p1",
    model: str = "upstream:test-model",
    key_limits: Limits = Limits(),
    project_limits: Limits = Limits(),
    model_limits: Limits = Limits(),
    tokens: int = 0,
    max_cost: Decimal | str = "0",
    enforced: bool = False,
    cap: Decimal | str | None = None,
) -> Admission:
    return Admission(
        request_id=f"req_{uuid.uuid4().hex}",
        key_id=key,
        project_id=project,
        model_id=model,
        key_limits=key_limits,
        project_limits=project_limits,
        model_limits=model_limits,
        tokens=tokens,
        max_cost_units=to_units(Decimal(max_cost), up=True),
        credit_enforced=enforced,
        spend_cap_units=None if cap is None else to_units(Decimal(cap)),
    )


def call_record(
    ticket: Ticket | None = None,
    *,
    cost: Decimal | str = "0",
    input_tokens: int = 0,
    output_tokens: int = 0,
    status: int = 200,
    request_id: str | None = None,
    project: str | None = None,
    key: str | None = None,
) -> CallRecord:
    adm = ticket.admission if ticket is not None else None
    return CallRecord(
        request_id=request_id or (adm.request_id if adm else f"req_{uuid.uuid4().hex}"),
        surface="openai",
        operation="chat",
        started=time.time(),
        project_id=project or (adm.project_id if adm else None),
        key_id=key or (adm.key_id if adm else None),
        model_requested="test-model",
        model_served=adm.model_id if adm else None,
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        cost_units=to_units(Decimal(cost)),
        latency_ms=12.5,
        status=status,
    )


async def sync(h: Harness) -> None:
    """Makes settlements visible to the next admit (Redis sends them in a background pipeline)."""
    await h.meter.flush()
