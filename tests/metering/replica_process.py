"""A gateway replica in its own process, for the kill -9 test: hammers one key and project through a
RedisMeter until it is killed. Prints "ready" once it has settled its first calls.

    python -m tests.metering.replica_process <pg schema> <redis prefix>
"""

from __future__ import annotations

import asyncio
import sys

from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tollway.errors import InsufficientCredit, RateLimited
from tollway.metering import RedisMeter
from tollway.types import Limits

from .conftest import PG_URL, REDIS_URL, admission, call_record

KEY = "shared-key"
LIMITS = Limits(max_concurrency=20)


async def worker(meter: RedisMeter, counter: list[int]) -> None:
    while True:
        try:
            ticket = await meter.admit(admission(key=KEY, key_limits=LIMITS, max_cost="0.02", enforced=True))
        except (RateLimited, InsufficientCredit):
            await asyncio.sleep(0.001)
            continue
        await asyncio.sleep(0.002)  # the upstream call
        await meter.settle(ticket, call_record(ticket, cost="0.01"))
        counter[0] += 1
        if counter[0] == 50:
            print("ready", flush=True)


async def main(schema: str, prefix: str) -> None:
    engine = create_async_engine(PG_URL, connect_args={"server_settings": {"search_path": schema}})
    redis = Redis.from_pool(BlockingConnectionPool.from_url(REDIS_URL, max_connections=32, timeout=10))
    meter = RedisMeter(
        redis, async_sessionmaker(engine), prefix=prefix, consumer_name="victim", max_call_seconds=1
    )
    await meter.start()
    counter = [0]
    await asyncio.gather(*(worker(meter, counter) for _ in range(16)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
