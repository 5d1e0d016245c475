"""The ledger's time texts equal what `datetime` and SQLAlchemy write for the same instant: the same
rounding (half a microsecond, a carry into the next second or year), microseconds always written out."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from sqlalchemy.dialects import sqlite

from tollway.metering.timetext import iso_time_of, sqlite_time_of


def instants() -> list[float]:
    rng = random.Random(7)
    epochs = [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp(),  # a whole second
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC).timestamp() + 0.0000006,  # into 2027
        1_700_000_000.0000005,  # half a microsecond: to even
        1_700_000_000.0000015,
        1_700_000_000.9999996,
        946_684_799.9999999,
    ]
    epochs += [rng.uniform(0, 4_102_444_800) for _ in range(20_000)]
    epochs += [
        1_790_000_000 + rng.randrange(10**6) / 1e6 + rng.choice((0, 5e-7, -5e-7)) for _ in range(20_000)
    ]
    return epochs


def test_sqlite_time_is_what_sqlalchemy_stores_for_that_instant() -> None:
    process = sqlite.DATETIME().bind_processor(sqlite.dialect())
    assert process is not None
    for epoch in instants():
        assert sqlite_time_of(epoch) == process(datetime.fromtimestamp(epoch, UTC)), epoch


def test_iso_time_is_the_datetimes_own_iso_text() -> None:
    for epoch in instants():
        instant = datetime.fromtimestamp(epoch, UTC)
        text = iso_time_of(epoch)
        assert text == instant.isoformat(timespec="microseconds"), epoch
        assert datetime.fromisoformat(text) == instant
