"""Scale-out backing stores for a run: a fresh PostgreSQL database and an empty Redis database number.

Both are created for one target and removed (dropped / flushed) when it stops, so runs never see
each other's data and nothing is left behind. Targets that run side by side (the metering rounds)
get a database and a Redis database number each.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit


def _database_name(target: str) -> str:
    # The random tail keeps two databases for the same target created in the same second apart.
    return f"tollway_bench_{target.replace('-', '_')}_{os.getpid()}_{int(time.time())}_{secrets.token_hex(3)}"


def create_postgres_db(admin_url: str, target: str) -> tuple[str, Callable[[], None]]:
    """Create a database; return its SQLAlchemy asyncpg URL and a function that drops it."""
    import asyncpg

    name = _database_name(target)

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(admin_url)
    url = urlunsplit(("postgresql+asyncpg", parts.netloc, f"/{name}", "", ""))

    def drop() -> None:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return url, drop


def claim_redis_db(base_url: str, candidates: range = range(15, 0, -1)) -> tuple[str, Callable[[], None]]:
    """The highest-numbered empty Redis database; return its URL and a function that empties it."""
    from redis import Redis

    base = base_url.rstrip("/")
    for number in candidates:
        url = f"{base}/{number}"
        client = Redis.from_url(url)
        try:
            # nx: of two claims racing for the same empty database, only one gets it.
            if client.dbsize() == 0 and client.set("tollway-bench:claimed", str(os.getpid()), nx=True):

                def flush(client: Redis = client) -> None:
                    client.flushdb()
                    client.close()

                return url, flush
        except Exception:
            client.close()
            raise
        client.close()
    raise RuntimeError(f"no empty Redis database at {base_url} (tried {list(candidates)})")


def _parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def service_pids(admin_url: str, redis_url: str) -> list[int]:
    """The PostgreSQL postmaster and the redis-server, whose CPU a scale-out target adds to the box.

    These are shared services: their CPU during a run includes anything else that uses them.
    """
    pids: list[int] = []
    try:
        import asyncpg

        async def postmaster() -> int:
            conn = await asyncpg.connect(admin_url)
            try:  # read the backend's parent while the backend is still alive
                return _parent_pid(int(await conn.fetchval("SELECT pg_backend_pid()")))
            finally:
                await conn.close()

        pids.append(asyncio.run(postmaster()))
    except Exception:
        pass
    try:
        from redis import Redis

        client = Redis.from_url(redis_url)
        try:
            pids.append(int(client.info("server")["process_id"]))
        finally:
            client.close()
    except Exception:
        pass
    return pids


def pin_services(pids: list[int], cpus: str, restore: str) -> Callable[[], None]:
    """Moves the services' processes and threads (PostgreSQL: the postmaster, so backends forked from
    now on too, and every live backend) onto `cpus`, off the gateway's core: otherwise the scheduler
    runs them beside the pinned gateway, and the gateway's CPU per call grows with their cache misses
    and preemptions. Returns the undo. Needs the right to change those processes (root, or their owner);
    a failure is ignored: the run is merely less isolated."""
    from bench.measure import tree_pids

    def apply(mask: str) -> None:
        for root in pids:
            for pid in tree_pids(root):
                command = ["taskset", "-a", "-p", "-c", mask, str(pid)]
                subprocess.run(command, capture_output=True, check=False)

    apply(cpus)
    return lambda: apply(restore)


def postgres_version(admin_url: str) -> str | None:
    try:
        import asyncpg

        async def run() -> str:
            conn = await asyncpg.connect(admin_url)
            try:
                return str(await conn.fetchval("SHOW server_version"))
            finally:
                await conn.close()

        return asyncio.run(run())
    except Exception:
        return None


def redis_version(url: str) -> str | None:
    try:
        from redis import Redis

        client = Redis.from_url(url)
        try:
            return str(client.info("server").get("redis_version"))
        finally:
            client.close()
    except Exception:
        return None
