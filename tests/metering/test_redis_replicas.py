"""Scale-out only: several RedisMeter "replicas" on one Redis and one PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tollway.errors import InsufficientCredit, RateLimited
from tollway.metering import RedisMeter, Ticket
from tollway.store.models import Project, UsageRow
from tollway.types import Limits

from .conftest import Harness, admission, call_record, headers_of, redis_harness


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    """Replica A (the harness's meter) plus whatever replicas a test starts, on fresh state."""
    async with redis_harness() as harness:
        yield harness


async def totals(h: Harness) -> tuple[int, Decimal, Decimal]:
    async with h.factory() as session:
        count, cost = (
            await session.execute(select(func.count(), func.coalesce(func.sum(UsageRow.cost), 0)))
        ).one()
        project = await session.get(Project, "p1")
        assert project is not None
        return count, Decimal(cost), project.spent


async def test_two_replicas_admit_exactly_rpm(h: Harness) -> None:
    b = await h.replica()
    limits = Limits(rpm=25)
    meters = [h.meter, b] * 40
    results = await asyncio.gather(
        *(m.admit(admission(key_limits=limits)) for m in meters), return_exceptions=True
    )
    assert sum(isinstance(r, Ticket) for r in results) == 25
    assert sum(isinstance(r, RateLimited) for r in results) == 55


async def test_redis_clock_counts_exactly(h: Harness) -> None:
    """Without an injected clock both replicas read Redis's TIME: still exact."""
    a = await h.replica(clock=None)
    b = await h.replica(clock=None)
    limits = Limits(rpm=10, tpm=1000, max_concurrency=50)
    meters = [a, b] * 15
    results = await asyncio.gather(
        *(m.admit(admission(key_limits=limits, tokens=10)) for m in meters), return_exceptions=True
    )
    tickets = [r for r in results if isinstance(r, Ticket)]
    assert len(tickets) == 10
    assert headers_of(tickets[0])["x-ratelimit-reset-requests"].endswith("s")


async def test_hammered_balance_admits_floor_of_balance_over_price(h: Harness) -> None:
    b = await h.replica()
    await h.meter.grant("p1", Decimal("1.00"), "top-up")
    price = Decimal("0.03")

    async def call(meter: RedisMeter) -> bool:
        try:
            ticket = await meter.admit(admission(max_cost=price, enforced=True))
        except InsufficientCredit:
            return False
        await asyncio.sleep(0)
        await meter.settle(ticket, call_record(ticket, cost=price))
        return True

    results = await asyncio.gather(*(call(m) for m in [h.meter, b] * 50))
    assert sum(results) == 33  # floor(1.00 / 0.03)
    await h.meter.flush()
    await b.flush()
    assert await b.balance("p1") == Decimal("0.01")
    assert await totals(h) == (33, Decimal("0.99"), Decimal("0.99"))


async def test_killed_replica_loses_nothing_and_replay_counts_once(h: Harness) -> None:
    # The survivor drains by hand here, so the test decides who reads what; the sleep outlasts the
    # blocking reads the cancelled drainers had already sent to Redis.
    h.meter.drainer.abandon()
    dead = await h.replica(consumer_name="doomed")
    dead.abandon()  # its background tasks stop here, as in kill -9
    await asyncio.sleep(0.2)
    for _ in range(5):
        ticket = await dead.admit(admission())
        await dead.settle(ticket, call_record(ticket, cost="0.2"))
    await dead.flush_settlements()  # the settle pipeline had gone out before the kill
    stream = f"{h.prefix}ledger"
    taken = await h.redis.xreadgroup("ledger-writers", "doomed", {stream: ">"}, count=100)  # type: ignore[union-attr]
    entries = taken[0][1]
    assert len(entries) == 5  # read by the doomed replica, never written, never acknowledged
    assert await h.meter.drainer.drain() == 0  # delivered to "doomed": only a reclaim can take them
    assert await h.meter.drainer.reclaim(min_idle_ms=0) == 5
    assert await totals(h) == (5, Decimal("1.0"), Decimal("1.0"))
    # a replica that died after its commit but before XACK: the same entries are written again
    assert await h.meter.drainer._write(entries) == 5
    assert await totals(h) == (5, Decimal("1.0"), Decimal("1.0"))
    assert await h.meter.balance("p1") == Decimal("-1.0")


async def test_dead_replicas_reservations_expire(h: Harness) -> None:
    dead = await h.replica(max_call_seconds=600)
    await h.meter.grant("p1", Decimal("1"), None)
    limits = Limits(max_concurrency=1)
    await dead.admit(admission(key_limits=limits, max_cost="0.75", enforced=True, cap="1"))
    dead.abandon()
    assert await h.meter.balance("p1") == Decimal("0.25")
    with pytest.raises(RateLimited):
        await h.meter.admit(admission(key_limits=limits))
    with pytest.raises(InsufficientCredit):
        await h.meter.admit(admission(max_cost="0.75", enforced=True))
    h.clock.advance(601)
    assert await h.meter.balance("p1") == Decimal("1")
    ticket = await h.meter.admit(admission(key_limits=limits, max_cost="0.75", enforced=True, cap="1"))
    await h.meter.settle(ticket, call_record(ticket, cost="0.5"))
    await h.meter.flush()
    assert await h.meter.balance("p1") == Decimal("0.5")
    assert await h.meter.key_spend("k1") == Decimal("0.5")


async def test_late_settle_after_reap_still_charges_once(h: Harness) -> None:
    await h.meter.grant("p1", Decimal("1"), None)
    ticket = await h.meter.admit(admission(max_cost="0.75", enforced=True))
    h.clock.advance(601)
    assert await h.meter.reap() == 1
    await h.meter.settle(ticket, call_record(ticket, cost="0.5"))
    await h.meter.flush()
    assert await h.meter.balance("p1") == Decimal("0.5")


async def test_an_earlier_versions_hold_is_reaped_too(h: Harness) -> None:
    """Holds used to be a hash per request id plus its id in `holds`; a replica of that version that
    died leaves such holds behind, and reaping gives their money back as it does its own."""
    assert h.redis is not None
    await h.meter.grant("p1", Decimal("1"), None)
    await h.meter.key_spend("k1")  # seeds the key's live counters
    ticket = await h.meter.admit(admission(max_cost="0.1", enforced=True, cap="1"))  # a hold of ours
    units = str(int(Decimal("0.25") * 10**10))
    await h.redis.decrby(f"{h.prefix}bal:p1", int(units))  # what the earlier version's admit took
    await h.redis.incrby(f"{h.prefix}kused:k1", int(units))
    await h.redis.hset(f"{h.prefix}hold:old-call", mapping={"p": "p1", "pa": units, "k": "k1", "ka": units})
    await h.redis.zadd(f"{h.prefix}holds", {"old-call": 1})  # long past its deadline
    assert await h.meter.balance("p1") == Decimal("0.9")  # reaped: only our own hold is still held
    assert not await h.redis.exists(f"{h.prefix}hold:old-call")
    assert int(await h.redis.get(f"{h.prefix}kused:k1")) == int(Decimal("0.1") * 10**10)
    await h.meter.settle(ticket, call_record(ticket, cost="0.05"))
    await h.meter.flush()
    assert await h.meter.balance("p1") == Decimal("0.95")
    assert await h.redis.zcard(f"{h.prefix}holds") == 0


async def test_live_state_rebuilt_from_postgres(h: Harness) -> None:
    """A replica on an empty Redis (new prefix) seeds balances and key spend from PostgreSQL."""
    await h.meter.grant("p1", Decimal("3"), None)
    ticket = await h.meter.admit(admission(max_cost="1", enforced=True))
    await h.meter.settle(ticket, call_record(ticket, cost="0.4"))
    await h.meter.flush()
    assert h.redis is not None
    fresh = RedisMeter(h.redis, h.factory, prefix=h.prefix + "fresh:", clock=h.clock)
    await fresh.start()
    try:
        assert await fresh.balance("p1") == Decimal("2.6")
        assert await fresh.key_spend("k1") == Decimal("0.4")
    finally:
        await fresh.aclose()


@pytest.mark.parametrize("kind", ["credit", "cap"])
async def test_a_dead_replicas_expired_holds_never_refuse_a_call(h: Harness, kind: str) -> None:
    """Once a dead replica's holds are past their deadline, a call that fits without them is admitted
    (admit gives expired holds back before it checks the money)."""
    await h.meter.grant("p1", Decimal("1"), None)
    b = await h.replica()
    money = {"enforced": True} if kind == "credit" else {"cap": "1"}
    held = await b.admit(admission(max_cost="0.8", **money))  # type: ignore[arg-type]
    b.abandon()  # killed mid-call: its hold stays in Redis
    with pytest.raises(InsufficientCredit):
        await h.meter.admit(admission(max_cost="0.5", **money))  # type: ignore[arg-type]  # held still
    h.clock.advance(601)
    ticket = await h.meter.admit(admission(max_cost="0.5", **money))  # type: ignore[arg-type]
    assert ticket.credit_hold + ticket.cap_hold > 0 and not held.settled


async def test_window_keys_outlive_their_entries_and_expire_once_idle(h: Harness) -> None:
    """With a TPM limit, the window keys' expiry is pushed back once a window, not on every admit; it
    must still cover every entry for its whole window. Without one, the window's is set on every admit."""
    assert h.redis is not None
    both, requests_only = Limits(rpm=1000, tpm=100_000), Limits(rpm=1000)
    windows = [f"{h.prefix}{kind}:k:k1" for kind in ("w", "wm")]  # the entries, and their total

    async def ttls() -> list[int]:
        return [await h.redis.pttl(name) for name in windows]  # type: ignore[union-attr]

    await h.meter.admit(admission(key_limits=both, project_limits=requests_only, tokens=10))
    assert all(120_000 < ttl <= 180_000 for ttl in await ttls())  # three windows
    assert 0 < await h.redis.pttl(f"{h.prefix}w:p:p1") <= 60_000
    for name in windows:  # as if 80 s had passed since
        await h.redis.pexpire(name, 100_000)
    h.clock.advance(30)  # within a window of the last push: not pushed again
    await h.meter.admit(admission(key_limits=both, tokens=10))
    assert all(90_000 < ttl <= 100_000 for ttl in await ttls())  # still ≥ 60 s beyond this entry
    h.clock.advance(30)  # a window since the last push: pushed back again
    await h.meter.admit(admission(key_limits=both, tokens=10))
    assert all(120_000 < ttl <= 180_000 for ttl in await ttls())


async def test_settling_the_only_call_of_a_window_keeps_its_expiry(h: Harness) -> None:
    """Settling rewrites the call's window entry with its actual tokens; in a window holding that call
    alone, the set must not be emptied on the way (Redis would delete it, and make it anew without an
    expiry, to outlive the total it is counted against)."""
    assert h.redis is not None
    ticket = await h.meter.admit(admission(key_limits=Limits(tpm=100_000), tokens=50))
    await h.meter.settle(ticket, call_record(ticket, input_tokens=5, output_tokens=7))
    await h.meter.flush()
    window, total = f"{h.prefix}w:k:k1", f"{h.prefix}wm:k:k1"
    assert await h.redis.zrange(window, 0, -1) == [f"12:{ticket.request_id}".encode()]
    assert await h.redis.hget(total, "s") == b"12"
    assert 120_000 < await h.redis.pttl(window) <= 180_000
    assert abs(await h.redis.pttl(window) - await h.redis.pttl(total)) < 1_000


async def test_a_call_settled_after_leaving_the_window_counts_no_more(h: Harness) -> None:
    assert h.redis is not None
    limits = Limits(tpm=100_000)
    first = await h.meter.admit(admission(key_limits=limits, tokens=50))
    h.clock.advance(61)
    second = await h.meter.admit(admission(key_limits=limits, tokens=10))  # prunes the first
    await h.meter.settle(first, call_record(first, input_tokens=5, output_tokens=7))
    await h.meter.flush()
    window, total = f"{h.prefix}w:k:k1", f"{h.prefix}wm:k:k1"
    assert await h.redis.zrange(window, 0, -1) == [f"10:{second.request_id}".encode()]
    assert await h.redis.hget(total, "s") == b"10"
    assert await h.redis.pttl(window) > 0


async def test_settle_moves_only_the_live_counters_left(h: Harness) -> None:
    """A Redis that lost one of a call's counters between admit and settle (eviction, a flush): settle
    moves the one still there and never creates the other (it is seeded from SQL when next needed)."""
    assert h.redis is not None
    bal, kspend = f"{h.prefix}bal:p1", f"{h.prefix}kspend:k1"
    await h.meter.grant("p1", Decimal(10), None)
    first = await h.meter.admit(admission(max_cost="1", enforced=True))
    spent_before = int(await h.redis.get(kspend))
    await h.redis.delete(bal)
    await h.meter.settle(first, call_record(first, cost="0.4"))
    await h.meter.flush_settlements()
    assert await h.redis.exists(bal) == 0
    assert int(await h.redis.get(kspend)) == spent_before + 4_000_000_000  # 0.4 $ in 1e-10 units

    second = await h.meter.admit(admission(max_cost="1", enforced=True))  # reseeds bal from SQL
    live = int(await h.redis.get(bal))
    await h.redis.delete(kspend, f"{h.prefix}kused:k1")
    await h.meter.settle(second, call_record(second, cost="0.25"))
    await h.meter.flush_settlements()
    assert await h.redis.exists(kspend) == 0
    assert int(await h.redis.get(bal)) == live + 10_000_000_000 - 2_500_000_000  # hold back, cost taken


async def test_a_redis_that_lost_everything_still_gets_the_ledger_written(h: Harness) -> None:
    """Redis restarted without persistence (or flushed): the ledger stream and the group that reads it are
    gone; a call settled afterwards goes to a new stream, and must still reach the database."""
    assert h.redis is not None
    await h.meter.grant("p1", Decimal("3"), None)
    before = await h.meter.admit(admission(max_cost="1", enforced=True))
    await h.meter.settle(before, call_record(before, cost="0.4"))
    await h.meter.flush()
    lost = [key async for key in h.redis.scan_iter(match=f"{h.prefix}*")]
    await h.redis.delete(*lost)  # everything this meter kept in Redis, the stream and its group included
    after = await h.meter.admit(admission(max_cost="1", enforced=True))  # live state reseeded from SQL
    await h.meter.settle(after, call_record(after, cost="0.25"))
    await h.meter.flush()
    async with h.factory() as session:
        written = set((await session.scalars(select(UsageRow.request_id))).all())
    assert {before.admission.request_id, after.admission.request_id} <= written
    assert await h.meter.balance("p1") == Decimal("2.35")
