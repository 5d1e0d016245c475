"""Micro-benchmark: microseconds per admit + settle, embedded (MemoryMeter) and scale-out (RedisMeter).

    .venv/bin/python bench/metering_micro.py [--calls 20000] [--concurrency 64] [--redis redis://127.0.0.1:6379/0]
        [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/test] [--uvloop]

Each call admits against a key, a project and a (project, model) scope with RPM, TPM and concurrency
limits plus an enforced credit reservation, then settles with a cost. Settlement, ledger writes and the
stream drain run in the background as in production; the time includes them up to a final flush.
Sequential = one call at a time (latency); concurrent = N tasks in flight (throughput per call).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from tollway.metering import Admission, MemoryMeter, RedisMeter, rate_headers
from tollway.store.db import create_engine
from tollway.store.models import Base, Project
from tollway.types import CallRecord, Limits, Usage

BIG = Limits(rpm=10_000_000, tpm=10_000_000_000, max_concurrency=100_000)


# Request ids as the gateway makes them (api/middleware.py: a random prefix per process, then a counter),
# not random UUIDs: the ledger's primary key index costs far more for random keys (~18 µs a row at
# 150,000 rows on SQLite against a flat ~5 µs), and that is not what the gateway pays.
_ID_PREFIX = f"req_{uuid.uuid4().hex[:16]}"
_IDS = itertools.count(1)


def make_admission(i: int) -> Admission:
    return Admission(
        request_id=f"{_ID_PREFIX}{next(_IDS):08x}",
        key_id="bench-key",
        project_id="bench",
        model_id="upstream:bench-model",
        key_limits=BIG,
        project_limits=BIG,
        model_limits=BIG,
        tokens=500,
        max_cost_units=10_000_000,  # $0.001
        credit_enforced=True,
        spend_cap_units=None,
    )


def make_record(admission: Admission) -> CallRecord:
    return CallRecord(
        request_id=admission.request_id,
        surface="openai",
        operation="chat",
        started=time.time(),
        project_id=admission.project_id,
        key_id=admission.key_id,
        model_served=admission.model_id,
        usage=Usage(input_tokens=300, output_tokens=100),
        cost_units=4_000_000,  # $0.0004
    )


Timing = dict[str, float]


async def calls_loop(meter: Any, pairs: list[tuple[Admission, CallRecord]]) -> None:
    for admission, record in pairs:
        ticket = await meter.admit(admission)
        rate_headers(ticket.requests, ticket.tokens)  # as the pipeline writes them
        await meter.settle(ticket, record)


def prepared(calls: int) -> list[tuple[Admission, CallRecord]]:
    """Admissions and records built before the clock starts: the pipeline builds them anyway."""
    pairs = []
    for i in range(calls):
        admission = make_admission(i)
        pairs.append((admission, make_record(admission)))
    return pairs


async def run(meter: Any, calls: int, concurrency: int) -> Timing:
    """µs per call: wall and this process's CPU, one at a time and with `concurrency` in flight;
    then µs per ledger row for writing what the calls left (not part of the call's own path)."""
    result: Timing = {}
    for label, workers in (("seq", 1), ("conc", concurrency)):
        pairs = prepared(calls)
        chunks = [pairs[i::workers] for i in range(workers)]
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(calls_loop(meter, chunk) for chunk in chunks))
        if isinstance(meter, RedisMeter):
            await meter.flush_settlements()  # the settle pipelines are part of the call's cost
        result[f"{label}_wall"] = (time.perf_counter() - wall) / calls * 1e6
        result[f"{label}_cpu"] = (time.process_time() - cpu) / calls * 1e6
        wall, cpu = time.perf_counter(), time.process_time()
        await meter.flush()
        result[f"{label}_ledger"] = (time.perf_counter() - wall) / calls * 1e6
        # CPU of every thread of this process (aiosqlite's included): the gateway pays it too
        result[f"{label}_ledger_cpu"] = (time.process_time() - cpu) / calls * 1e6
    return result


async def seed(factory: async_sessionmaker[AsyncSession]) -> None:
    async with factory() as session, session.begin():
        session.add(Project(id="bench", name="bench", created_at=datetime.now(UTC), credit_enforced=True))


@contextlib.asynccontextmanager
async def sqlite() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    with tempfile.TemporaryDirectory() as tmp:
        # the gateway's own engine: WAL and synchronous=NORMAL, as deployed
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        yield async_sessionmaker(engine, expire_on_commit=False)
        await engine.dispose()


@contextlib.asynccontextmanager
async def postgres(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    schema = f"tw_bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def bench_memory(calls: int, concurrency: int) -> Timing:
    async with sqlite() as factory:
        await seed(factory)
        meter = MemoryMeter(factory, flush_interval=3600)  # rows written by the timed flush only
        await meter.start()
        await meter.grant("bench", Decimal(1_000_000), None)
        try:
            return await run(meter, calls, concurrency)
        finally:
            await meter.aclose()


async def bench_redis(calls: int, concurrency: int, redis_url: str, pg_url: str) -> Timing:
    client = Redis.from_pool(BlockingConnectionPool.from_url(redis_url, max_connections=concurrency + 8))
    prefix = f"twbench:{uuid.uuid4().hex[:8]}:"
    try:
        async with postgres(pg_url) as factory:
            await seed(factory)
            meter = RedisMeter(client, factory, prefix=prefix)  # drains in the background, as deployed
            await meter.start()
            await meter.grant("bench", Decimal(1_000_000), None)
            try:
                return await run(meter, calls, concurrency)
            finally:
                await meter.aclose()
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def main(args: argparse.Namespace) -> None:
    report("memory", await bench_memory(args.calls, args.concurrency), args.concurrency)
    scale_out = await bench_redis(max(1, args.calls // 4), args.concurrency, args.redis, args.pg)
    report("redis", scale_out, args.concurrency)


def report(name: str, t: Timing, concurrency: int) -> None:
    """The ledger figures are what the final flush took; rows written in the background during the
    timed calls are in the calls' own CPU figure (the Redis drainer writes as the calls go)."""
    print(
        f"{name:6} admit+settle  sequential: {t['seq_wall']:7.1f} us wall {t['seq_cpu']:7.1f} us cpu | "
        f"{concurrency} in flight: {t['conc_wall']:7.1f} us wall {t['conc_cpu']:7.1f} us cpu per call | "
        f"final ledger flush {t['conc_ledger']:6.1f} us wall {t['conc_ledger_cpu']:6.1f} us cpu per call | "
        f"total cpu {t['conc_cpu'] + t['conc_ledger_cpu']:6.1f} us per call"
    )


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--uvloop", action="store_true", help="the gateway's event loop (default: asyncio's)")
    args = parser.parse_args()
    loop_factory = None
    if args.uvloop:
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main(args))


if __name__ == "__main__":
    cli()
