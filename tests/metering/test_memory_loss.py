"""The embedded meter's loss bound: a killed process loses the rows it had not yet written (at most
flush_interval's worth of calls plus one batch in flight). Those calls are then charged zero times,
never twice: after a restart the balance is rebuilt from what the database holds."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from tollway.metering import MemoryMeter
from tollway.store.models import UsageRow

from .conftest import add_project, admission, call_record, sqlite_db


async def test_kill_loses_only_unwritten_rows_and_counts_nothing_twice(tmp_path: Path) -> None:
    async with sqlite_db(tmp_path / "t.db") as factory:
        await add_project(factory, "p1", credit_enforced=True)
        meter = MemoryMeter(factory, flush_interval=3600)
        await meter.start()
        await meter.grant("p1", Decimal("10"), None)
        for i in range(8):
            ticket = await meter.admit(admission(max_cost="1", enforced=True))
            await meter.settle(ticket, call_record(ticket, cost="0.5"))
            if i == 4:
                await meter.flush()  # five rows durable; the next three only in memory
        assert await meter.balance("p1") == Decimal("6")
        meter.abandon()

        restarted = MemoryMeter(factory)
        await restarted.start()
        try:
            assert await restarted.balance("p1") == Decimal("7.5")
            assert await restarted.key_spend("k1") == Decimal("2.5")
            async with factory() as session:
                assert (await session.execute(select(func.count()).select_from(UsageRow))).scalar() == 5
        finally:
            await restarted.aclose()
