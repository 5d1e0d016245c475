"""A fresh PostgreSQL database and a private Redis key prefix for gateways in scale-out mode."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import redis

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_DB = 7


async def _pg(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def scaleout_backing(**extra_env: str) -> Iterator[dict[str, str]]:
    """The TOLLWAY_* variables of a scale-out deployment on its own database; cleaned up afterwards."""
    name = f"tw_e2e_{secrets.token_hex(4)}"
    asyncio.run(_pg(f"CREATE DATABASE {name}"))
    prefix = f"{name}:"  # a prefix of our own: other test runs may share this Redis
    try:
        yield {
            "TOLLWAY_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}",
            "TOLLWAY_REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "TOLLWAY_REDIS_PREFIX": prefix,
            **extra_env,
        }
    finally:
        client = redis.Redis(db=REDIS_DB)
        for stale in client.scan_iter(f"{prefix}*"):
            client.delete(stale)
        asyncio.run(_pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
