"""The SQLite engine hands back the connection returned last: the ledger writer keeps its warm one (its
bulk INSERTs already prepared), where a FIFO pool would rotate each flush onto another connection."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from tollway.store.db import create_engine


async def test_the_connection_returned_last_is_handed_out_next(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}")
    try:
        first, second = await engine.connect(), await engine.connect()  # two connections in the pool
        await first.execute(text("SELECT 1"))
        await second.execute(text("SELECT 1"))
        first_raw = (await first.get_raw_connection()).driver_connection
        second_raw = (await second.get_raw_connection()).driver_connection
        await first.close()
        await second.close()  # returned last
        async with engine.connect() as again:
            assert (await again.get_raw_connection()).driver_connection is second_raw
        assert first_raw is not second_raw
    finally:
        await engine.dispose()
