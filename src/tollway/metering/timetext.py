"""Unix times as text in a fixed layout, as the ledger writes them for every row, without building a
`datetime`: the seconds are formatted once per second, the microseconds by slicing.

The text is that of `datetime.fromtimestamp(epoch, UTC)`: rounded to the nearest microsecond, half to
even, as that datetime is (the tests compare them over tens of thousands of instants).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

_modf = math.modf
_gmtime = time.gmtime
_strftime = time.strftime


def time_text(layout: str, suffix: str = "") -> Callable[[float], str]:
    """A function writing a Unix time as `strftime(layout)` of its whole second (UTC), then the six
    digits of its microseconds, then `suffix`. A closure, not a class: a call costs what a plain
    function's does. Its cache keeps one entry a second, bounded however long the process lives."""
    seconds: dict[float, str] = {}

    def text_of(epoch: float) -> str:
        # The whole second stays a float (a valid key, and `gmtime` takes it: no `int()`), and the
        # microseconds are zero-padded by slicing, which costs half a `:06d` format.
        fraction, whole = _modf(epoch)
        micros = round(fraction * 1e6)
        if micros >= 1_000_000:
            whole, micros = whole + 1.0, micros - 1_000_000
        text = seconds.get(whole)
        if text is None:
            if len(seconds) > 4096:
                seconds.clear()
            text = seconds[whole] = _strftime(layout, _gmtime(whole))
        return text + str(1_000_000 + micros)[1:] + suffix

    return text_of


# SQLAlchemy's SQLite DateTime text of an aware UTC datetime: naive UTC, always with microseconds.
sqlite_time_of = time_text("%Y-%m-%d %H:%M:%S.")
# `datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds")`, which PostgreSQL reads exactly.
iso_time_of = time_text("%Y-%m-%dT%H:%M:%S.", "+00:00")
