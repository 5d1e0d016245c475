"""With the embedded meter, a call is priced when it is settled (its cost header goes out with the answer)
and accounted for on the event loop's next turn: after the answer's last write, before anything the answer
could cause. These tests pin both halves, and that a failure in the deferred half is logged, not lost."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from tollway.catalog.catalog import CatalogModel
from tollway.metering import MemoryMeter
from tollway.observability import Metrics
from tollway.pipeline.call import COST_HEADER, Call
from tollway.pipeline.metering import Metering
from tollway.store.models import UsageRow
from tollway.types import Limits, ModelRequest, Operation, Pricing, Principal, Surface, Usage

from .conftest import add_project, sqlite_db

MODEL = CatalogModel(
    id="upstream:the-model",
    provider="upstream",
    upstream_model="the-model",
    capabilities=frozenset({"chat"}),
    pricing=Pricing(input_per_mtok=Decimal("1"), output_per_mtok=Decimal("2")),
)
PRINCIPAL = Principal(
    key_id="k1",
    key_prefix="tw_1",
    project_id="p1",
    project_name="project",
    scopes=frozenset({"inference"}),
    key_limits=Limits(rpm=100, tpm=100_000),
    project_limits=Limits(),
    spend_cap=None,
    credit_enforced=True,
)
BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}


def admitted_call() -> Call:
    call = Call("req_after_1", Surface.OPENAI, Operation.CHAT, PRINCIPAL)
    call.served_by(MODEL.target())
    return call


async def test_priced_at_once_and_accounted_on_the_next_turn(tmp_path: Path) -> None:
    async with sqlite_db(tmp_path / "t.db") as factory:
        await add_project(factory, "p1", credit_enforced=True)
        meter = MemoryMeter(factory, flush_interval=3600)
        await meter.start()
        try:
            await meter.grant("p1", Decimal("1"), None)
            metrics = Metrics()
            metering = Metering(meter, metrics)
            call = admitted_call()
            await metering.admit(call, MODEL, ModelRequest(body=BODY))
            held = await meter.balance("p1")
            assert held < Decimal("1")  # the worst case is held while the call runs

            await metering.settle(call, Usage(input_tokens=1000, output_tokens=500))
            # Priced now, for the answer's header; not yet accounted: the answer goes out first.
            assert call.headers[COST_HEADER] == "0.002"
            assert call.ticket is None  # taken: nothing else can settle it again
            assert sum(metrics.latency_buckets) == 0
            assert await meter.balance("p1") == held  # (balance and key_spend never yield)
            assert await meter.key_spend("k1") == 0

            await asyncio.sleep(0)  # the loop's next turn
            assert sum(metrics.latency_buckets) == 1
            assert await meter.balance("p1") == Decimal("0.998")  # the hold released, the cost taken
            assert await meter.key_spend("k1") == Decimal("0.002")
            await meter.flush()
            async with factory() as session:
                (row,) = (await session.execute(select(UsageRow))).scalars()
            assert (row.request_id, row.project_id, row.status) == ("req_after_1", "p1", 200)
        finally:
            await meter.aclose()


async def test_a_failure_in_the_deferred_accounting_is_logged_with_the_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sqlite_db(tmp_path / "t.db") as factory:
        await add_project(factory, "p1")
        meter = MemoryMeter(factory, flush_interval=3600)
        await meter.start()
        try:
            await meter.grant("p1", Decimal("1"), None)
            metering = Metering(meter, Metrics())
            call = admitted_call()
            await metering.admit(call, MODEL, ModelRequest(body=BODY))

            def broken(*_args: object) -> None:
                raise RuntimeError("a bug in settle_now")

            monkeypatch.setattr(meter, "settle_now", broken)
            with caplog.at_level(logging.ERROR, logger="tollway.metering"):
                await metering.settle(call, Usage(input_tokens=1, output_tokens=1))
                await asyncio.sleep(0)
            (failure,) = [r for r in caplog.records if r.getMessage() == "settle_failed"]
            assert failure.request_id == "req_after_1"  # type: ignore[attr-defined]
            assert failure.exc_info is not None and "a bug in settle_now" in str(failure.exc_info[1])
        finally:
            await meter.aclose()
