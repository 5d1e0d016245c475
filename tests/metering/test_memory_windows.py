"""The embedded meter's window log (flat arrays, a moving head): what the behaviour suite cannot reach
cheaply through the Meter protocol, such as the shift that drops a long-gone front of the log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tollway.metering import MemoryMeter
from tollway.metering.memory import _COMPACT_AT
from tollway.types import Limits

from .conftest import FakeClock, add_project, admission, call_record, headers_of, sqlite_db


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def meter(tmp_path: Path, clock: FakeClock) -> AsyncIterator[MemoryMeter]:
    async with sqlite_db(tmp_path / "t.db") as factory:
        await add_project(factory, "p1")
        meter = MemoryMeter(factory, clock=clock)
        await meter.start()
        try:
            yield meter
        finally:
            meter.abandon()
            await meter.aclose()


async def test_a_long_window_shifts_down_and_its_entries_still_settle(
    meter: MemoryMeter, clock: FakeClock
) -> None:
    limits = Limits(rpm=1_000_000, tpm=100_000_000)
    calls = _COMPACT_AT + 10
    old = [await meter.admit(admission(key_limits=limits, tokens=10)) for _ in range(calls)]
    clock.advance(30)
    kept = await meter.admit(admission(key_limits=limits, tokens=500))
    clock.advance(30.5)  # the first calls have left: the front of the log is dropped
    fresh = await meter.admit(admission(key_limits=limits, tokens=7))
    scope = next(iter(meter._scopes.values()))
    assert scope.head < _COMPACT_AT  # shifted down
    headers = headers_of(fresh)
    assert headers["x-ratelimit-remaining-requests"] == str(1_000_000 - 2)
    assert headers["x-ratelimit-remaining-tokens"] == str(100_000_000 - 507)
    await meter.settle(kept, call_record(kept, input_tokens=40, output_tokens=2))  # 500 -> 42
    await meter.settle(old[0], call_record(old[0], input_tokens=999))  # gone: changes nothing
    headers = headers_of(await meter.admit(admission(key_limits=limits, tokens=1)))
    assert headers["x-ratelimit-remaining-requests"] == str(1_000_000 - 3)
    assert headers["x-ratelimit-remaining-tokens"] == str(100_000_000 - 42 - 7 - 1)
    assert headers["x-ratelimit-reset-requests"] == "29.5s"  # `kept`, at t = 30, leaves at 90


async def test_settling_an_entry_that_left_the_window_changes_nothing(
    meter: MemoryMeter, clock: FakeClock
) -> None:
    limits = Limits(tpm=1000)
    early = await meter.admit(admission(key_limits=limits, tokens=300))
    clock.advance(61)
    later = await meter.admit(admission(key_limits=limits, tokens=100))  # prunes `early`
    await meter.settle(early, call_record(early, input_tokens=900))  # too late to count
    assert headers_of(later)["x-ratelimit-remaining-tokens"] == "900"
    headers = headers_of(await meter.admit(admission(key_limits=limits, tokens=50)))
    assert headers["x-ratelimit-remaining-tokens"] == "850"
