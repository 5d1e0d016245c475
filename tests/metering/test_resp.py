"""The lean Redis client of the hot scripts (metering/resp.py): ordering, errors, reconnects."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError, NoScriptError, ResponseError
from sqlalchemy import text

from tollway.metering import RedisMeter
from tollway.metering.resp import RespClient
from tollway.metering.resp_encode import bulks
from tollway.metering.scripts import Batcher, Script
from tollway.store.models import Project

from .conftest import REDIS_URL, add_project, admission, call_record, pg_db, redis_prefix


@pytest.fixture
async def client() -> AsyncIterator[tuple[RespClient, Redis, str]]:
    redis = Redis.from_url(REDIS_URL)
    fast = RespClient.from_redis(redis)
    assert fast is not None
    prefix = f"twresp:{uuid.uuid4().hex[:12]}:"
    try:
        yield fast, redis, prefix
    finally:
        await fast.aclose()
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_pipelined_replies_reach_their_callers_in_order(client: tuple[RespClient, Redis, str]) -> None:
    fast, _, prefix = client
    # 500 commands in one tick go out in one write; each caller must get its own reply
    replies = await asyncio.gather(*(fast.execute("INCRBY", f"{prefix}n", i) for i in range(1, 501)))
    assert replies == [i * (i + 1) // 2 for i in range(1, 501)]
    assert await fast.execute_many([("GET", f"{prefix}n"), ("ECHO", "x"), ("INCR", f"{prefix}n")]) == [
        b"125250", b"x", 125251,
    ]  # fmt: skip
    assert fast.connects == 1


async def test_error_replies_keep_redis_py_types(client: tuple[RespClient, Redis, str]) -> None:
    fast, _, prefix = client
    await fast.execute("SET", f"{prefix}s", "text")
    with pytest.raises(ResponseError, match="not an integer"):
        await fast.execute("INCR", f"{prefix}s")
    with pytest.raises(NoScriptError):
        await fast.execute("EVALSHA", "0" * 40, 0)
    # in a batch, an error is that command's result; the others still run
    replies = await fast.execute_many([("INCR", f"{prefix}s"), ("ECHO", "after")])
    assert isinstance(replies[0], ResponseError) and replies[1] == b"after"


async def test_noscript_loads_the_script_once(client: tuple[RespClient, Redis, str]) -> None:
    fast, redis, prefix = client
    script = Script(redis, f"-- {prefix}\nreturn tonumber(ARGV[1]) + 1", fast)
    await redis.script_flush()  # as after a Redis restart
    assert await script([], [41]) == 42  # NOSCRIPT -> SCRIPT LOAD -> EVALSHA again
    assert await redis.script_exists(script.sha) == [True]
    await redis.script_flush()
    batcher = Batcher(Script(redis, f"-- {prefix}\nreturn redis.call('INCR', KEYS[1])", fast))
    batcher.submit([f"{prefix}c"], [])
    batcher.submit([f"{prefix}c"], [])
    await batcher.flush()  # the whole batch was refused for want of the script, then sent again
    assert await redis.get(f"{prefix}c") == b"2"


async def test_packed_calls_load_the_script_too(client: tuple[RespClient, Redis, str]) -> None:
    """The meter's pre-encoded EVALSHAs (`Script.packed_start` + the encoded arguments) after a Redis
    restart: alone, and queued in a batch beside an ordinary call."""
    fast, redis, prefix = client
    script = Script(redis, f"-- {prefix}\nreturn redis.call('INCRBY', ARGV[1], ARGV[2])", fast)
    packed = script.packed_start(2) + bulks([f"{prefix}p", 5])
    await redis.script_flush()
    assert await script.run_packed(packed) == 5
    await redis.script_flush()
    batcher = Batcher(script)
    batcher.submit_packed(packed)
    batcher.submit([], [f"{prefix}p", 1])
    await batcher.flush()
    assert await redis.get(f"{prefix}p") == b"11"


async def test_lost_connection_fails_waiters_then_reconnects(client: tuple[RespClient, Redis, str]) -> None:
    fast, redis, prefix = client
    assert await fast.execute("CLIENT", "SETNAME", f"twresp-{prefix[7:-1]}") == b"OK"
    client_id = await fast.execute("CLIENT", "ID")
    # a command blocked server-side, then the server drops the connection under it
    waiting = asyncio.ensure_future(fast.execute("BLPOP", f"{prefix}never", 5))
    await asyncio.sleep(0.05)
    assert await redis.client_kill_filter(_id=client_id) == 1
    with pytest.raises(ConnectionError):
        await waiting
    assert await fast.execute("PING") == b"PONG"  # the next command reconnects
    assert fast.connects == 2 and await fast.execute("CLIENT", "ID") != client_id


async def test_a_cancelled_caller_does_not_shift_the_replies(client: tuple[RespClient, Redis, str]) -> None:
    fast, _, prefix = client
    slow = asyncio.ensure_future(fast.execute("BLPOP", f"{prefix}q", 0.2))
    after = asyncio.ensure_future(fast.execute("ECHO", "mine"))
    await asyncio.sleep(0.01)
    slow.cancel()
    assert await after == b"mine"  # its reply was not handed to the cancelled caller's slot
    assert await fast.execute("ECHO", "next") == b"next"


async def test_unreachable_server_raises_connection_error() -> None:
    fast = RespClient(port=1, connect_timeout=1)
    with pytest.raises(ConnectionError):
        await fast.execute("PING")


async def test_a_server_that_stops_answering_is_dropped(client: tuple[RespClient, Redis, str]) -> None:
    _, redis, prefix = client
    fast = RespClient(port=redis.connection_pool.connection_kwargs.get("port", 6379), timeout=0.2)
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(ConnectionError):
            await fast.execute("BLPOP", f"{prefix}never", 5)  # no reply for 5 s: longer than the timeout
        assert asyncio.get_running_loop().time() - started < 2
        assert await fast.execute("PING") == b"PONG" and fast.connects == 2
    finally:
        await fast.aclose()


def test_follows_the_redis_py_client_settings() -> None:
    fast = RespClient.from_redis(Redis.from_url("redis://user:secret@10.1.2.3:6380/5?socket_timeout=2"))
    assert fast is not None
    assert (fast._host, fast._port, fast._db, fast._username, fast._password, fast._timeout) == (
        "10.1.2.3", 6380, 5, "user", "secret", 2.0,
    )  # fmt: skip
    unix = RespClient.from_redis(Redis.from_url("unix:///tmp/redis.sock?db=2"))
    assert unix is not None and (unix._path, unix._db) == ("/tmp/redis.sock", 2)
    assert RespClient.from_redis(Redis.from_url("rediss://10.1.2.3:6380/0")) is None  # TLS: redis-py


async def test_selects_the_db_and_reports_a_refused_login() -> None:
    fast = RespClient(db=9)
    try:
        assert b" db=9 " in await fast.execute("CLIENT", "INFO")
    finally:
        await fast.aclose()
    refused = RespClient(password="not-the-password")  # the test server has none: AUTH is an error
    with pytest.raises(ConnectionError, match=r"(?i)auth|password"):
        await refused.execute("PING")


async def test_a_settlement_cut_off_by_a_lost_connection_is_retried_once() -> None:
    async with pg_db() as factory, redis_prefix() as (redis, prefix):
        await add_project(factory, "p1", credit_enforced=True)
        meter = RedisMeter(redis, factory, prefix=prefix, flush_interval=0.05)
        await meter.start()
        try:
            await meter.grant("p1", Decimal("1"), None)
            ticket = await meter.admit(admission(max_cost="0.5", enforced=True))
            fast = meter._fast
            assert fast is not None
            connection_id = await fast.execute("CLIENT", "ID")
            await redis.execute_command("CLIENT", "PAUSE", 300, "WRITE")  # holds the settle script
            await meter.settle(ticket, call_record(ticket, cost="0.25"))
            await asyncio.sleep(0.05)  # the settle pipeline is out, waiting on the pause
            assert await redis.client_kill_filter(_id=connection_id) == 1
            await asyncio.sleep(0.4)  # the batcher reconnected and sent it again
            await meter.flush()
            assert await meter.balance("p1") == Decimal("0.75")
            async with factory() as session:
                project = await session.get(Project, "p1")
                rows = (await session.execute(text("SELECT count(*) FROM usage_ledger"))).scalar_one()
            assert rows == 1 and project is not None and project.spent == Decimal("0.25")
            assert fast.connects == 2
        finally:
            await redis.execute_command("CLIENT", "UNPAUSE")
            await meter.aclose()


async def test_lingering_commands_leave_with_the_next_one(client: tuple[RespClient, Redis, str]) -> None:
    fast, _, prefix = client
    await fast.execute("PING")  # connected
    loop = asyncio.get_running_loop()
    lingering = asyncio.ensure_future(fast.execute_many([("INCR", f"{prefix}l")], linger=0.5))
    await asyncio.sleep(0.05)
    assert not lingering.done()  # still in the buffer, waiting for company
    started = loop.time()
    assert await fast.execute("ECHO", "company") == b"company"
    assert await lingering == [1] and loop.time() - started < 0.25  # went out with the ECHO
    alone = await asyncio.wait_for(fast.execute_many([("INCR", f"{prefix}l")], linger=0.05), 1)
    assert alone == [2]  # no company came: it left after its linger
