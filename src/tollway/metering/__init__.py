"""Metering: rate limits (RPM, TPM, concurrency), credits and the usage ledger.

One behaviour, two implementations behind the `Meter` protocol: `MemoryMeter` (embedded: in-process
windows and balances, SQL ledger) and `RedisMeter` (scale-out: atomic Lua scripts in Redis, a Redis
stream drained into PostgreSQL by every replica). docs/metering.md explains the windows, the money and
the loss bounds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tollway.metering.cost import compute_cost, cost_units, worst_case_cost, worst_case_units
from tollway.metering.headers import format_reset, rate_headers
from tollway.metering.memory import MemoryMeter
from tollway.metering.protocol import Admission, Meter, RateState, StoreUnavailable, Ticket

if TYPE_CHECKING:
    from tollway.metering.redis_store import RedisMeter


def __getattr__(name: str) -> Any:
    # RedisMeter brings redis-py (~0.1-0.2 s to import): loaded when scale-out asks for it, not at start.
    if name == "RedisMeter":
        from tollway.metering.redis_store import RedisMeter

        return RedisMeter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Admission",
    "MemoryMeter",
    "Meter",
    "RateState",
    "RedisMeter",
    "StoreUnavailable",
    "Ticket",
    "compute_cost",
    "cost_units",
    "format_reset",
    "rate_headers",
    "worst_case_cost",
    "worst_case_units",
]
