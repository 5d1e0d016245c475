"""kill -9 of a real replica process mid-load, on one Redis and one PostgreSQL.

The survivor keeps serving; once the victim's reservations pass their deadline they return by
themselves; its unacknowledged ledger entries are claimed and written once; a restarted replica counts
nothing twice; and the money adds up exactly: live balance == credited - sum(ledger costs).
What may be lost is bounded: calls whose settlement had not yet left the victim's process (no row, and
no charge: their holds expire and are returned).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollway.errors import InsufficientCredit, RateLimited
from tollway.metering import RedisMeter, Ticket
from tollway.store.models import Project, UsageRow

from .conftest import add_project, admission, call_record, pg_db, redis_prefix
from .replica_process import KEY, LIMITS

ROOT = Path(__file__).resolve().parents[2]


async def test_kill9_replica_mid_load() -> None:
    schema, prefix = f"tw_kill_{uuid.uuid4().hex[:10]}", f"twtest:{uuid.uuid4().hex[:12]}:"
    async with pg_db(schema) as factory, redis_prefix(prefix) as (redis, prefix):
        await add_project(factory, "p1", credit_enforced=True)
        survivor = RedisMeter(redis, factory, prefix=prefix, consumer_name="survivor", max_call_seconds=1)
        await survivor.start()
        try:
            await survivor.grant("p1", Decimal("1000"), None)
            victim = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.metering.replica_process", schema, prefix,
                cwd=ROOT, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert victim.stdout is not None
            assert await asyncio.wait_for(victim.stdout.readline(), 20) == b"ready\n"
            served = await asyncio.gather(*(serve(survivor, 0.3) for _ in range(4)))  # both under load
            victim.send_signal(signal.SIGKILL)
            await victim.wait()
            # Long enough for the dead replica's held concurrency slots (up to 16 of 20) to pass their
            # deadline (max_call_seconds=1): before that, 4 workers share what is left, and on a slow
            # machine one of them could go 0.2 s without a slot.
            served += await asyncio.gather(*(serve(survivor, 1.3) for _ in range(4)))
            assert all(count > 0 for count in served[4:])  # the survivor kept serving after the kill

            await asyncio.sleep(1.1)  # past the victim's reservation deadline (max_call_seconds=1)
            await survivor.reap()
            await survivor.drainer.reclaim(min_idle_ms=0)
            await survivor.flush()
            await assert_books_balance(survivor, factory)
            # all 20 slots of the shared key are free again: the victim's were returned by deadline
            tickets = await asyncio.gather(
                *(survivor.admit(admission(key=KEY, key_limits=LIMITS)) for _ in range(20))
            )
            for ticket in tickets:
                await survivor.settle(ticket, call_record(ticket))

            restarted = RedisMeter(redis, factory, prefix=prefix, consumer_name="victim")
            await restarted.start()
            await restarted.drainer.reclaim(min_idle_ms=0)
            await restarted.aclose()
            await survivor.flush()
            await assert_books_balance(survivor, factory)
        finally:
            await survivor.aclose()


async def serve(meter: RedisMeter, seconds: float) -> int:
    loop = asyncio.get_running_loop()
    deadline, served = loop.time() + seconds, 0
    while loop.time() < deadline:
        try:
            ticket: Ticket = await meter.admit(
                admission(key=KEY, key_limits=LIMITS, max_cost="0.02", enforced=True)
            )
        except (RateLimited, InsufficientCredit):
            await asyncio.sleep(0.001)
            continue
        await asyncio.sleep(0.002)
        await meter.settle(ticket, call_record(ticket, cost="0.01"))
        served += 1
    return served


async def assert_books_balance(meter: RedisMeter, factory: async_sessionmaker[AsyncSession]) -> None:
    async with factory() as session:
        paid = UsageRow.cost > 0
        count, cost = (await session.execute(select(func.count(), func.sum(UsageRow.cost)).where(paid))).one()
        project = await session.get(Project, "p1")
    assert project is not None and count > 50
    assert project.spent == Decimal(cost) == Decimal("0.01") * count  # each call in the ledger once
    assert await meter.balance("p1") == project.credited - project.spent  # no hold left behind
