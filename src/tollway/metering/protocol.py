"""The metering contract: what the pipeline hands in (`Admission`), what it gets back (`Ticket`) and the
`Meter` protocol both implementations (embedded `MemoryMeter`, scale-out `RedisMeter`) satisfy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple, Protocol

from tollway.types import CallRecord, Limits

# How often finished calls' ledger rows go to SQL by default (`TOLLWAY_LEDGER_FLUSH_SECONDS`). A longer
# interval makes fewer, larger transactions, and each commit rewrites the last page of the table and of
# each index whatever the batch's size: at c=16 on the bench's chat calls, 0.5 s instead of 0.1 s takes
# the ledger's WAL writes from 0.46 to 0.27 `pwrite` a call and its thread's wake-ups from 0.81 to 0.13
# `futex` a call (strace). Its CPU effect is within what the bench can resolve (docs/performance.md). The
# usage API flushes before it answers, so the interval only bounds what a kill -9 loses (embedded) and
# how late rows reach SQL for direct readers.
LEDGER_FLUSH_SECONDS = 0.5


@dataclass(slots=True)
class Admission:
    """One call asking to be let through: who, which model, and how much it may consume at most."""

    request_id: str
    key_id: str
    project_id: str
    model_id: str  # catalog id, e.g. "upstream:gpt-4o-mini"
    key_limits: Limits
    project_limits: Limits
    model_limits: Limits  # per (project, model); Limits() = none
    tokens: int  # TPM reservation: estimated prompt tokens + max output tokens
    max_cost_units: int  # worst-case cost to reserve, in 1e-10 dollars (>= 0)
    credit_enforced: bool  # project's balance is binding
    spend_cap_units: int | None  # the key's own cap on its total spend, in 1e-10 dollars


class StoreUnavailable(Exception):
    """The meter's shared store (Redis) cannot be reached or answered with an error: no limit or balance
    can be checked, so the call is refused (fail closed). The cause is chained."""


class RateState(NamedTuple):
    """The most restrictive window of one family (requests or tokens) as the headers report it.
    Immutable; a NamedTuple rather than a frozen dataclass because two are built on every admit, and a
    frozen dataclass's __init__ costs ~4x more."""

    limit: int
    remaining: int
    reset_ms: int  # until the oldest entry in the window expires (remaining goes up); 0 when empty


@dataclass(slots=True)
class Ticket:
    """What `admit` took, so `settle` can give back exactly that. Opaque to the pipeline."""

    admission: Admission
    requests: RateState | None = None
    tokens: RateState | None = None
    credit_hold: int = 0  # units reserved against the project balance
    cap_hold: int = 0  # units reserved against the key's spend cap
    settled: bool = field(default=False)

    @property
    def request_id(self) -> str:
        return self.admission.request_id


class Meter(Protocol):
    """Limits, credits and the usage ledger behind one atomic admit / settle pair."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def admit(self, admission: Admission) -> Ticket: ...

    async def settle(self, ticket: Ticket, record: CallRecord) -> None: ...

    async def record(self, record: CallRecord) -> None: ...

    async def grant(self, project_id: str, amount: Decimal, note: str | None) -> Decimal: ...

    async def balance(self, project_id: str) -> Decimal: ...

    async def key_spend(self, key_id: str) -> Decimal: ...

    async def flush(self) -> None: ...
