"""The scale-out meter: limits, balances and holds in Redis, the ledger through a Redis stream.

Admit is ONE round trip (EVALSHA of the admit script). Settle queues one call of the settle script,
which atomically gives back what admit took, moves the money and appends the ledger row to the stream;
queued settlements go out together in one pipeline. Every replica drains the stream into SQL.
Both scripts travel over the lean auto-pipelining client of metering/resp.py (redis-py costs several
times the whole CPU budget per call); everything else uses redis-py.
Key layout, windows and loss bounds: docs/metering.md.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tollway.errors import InsufficientCredit, InvalidRequest, RateLimited
from tollway.metering import ledger, lua
from tollway.metering.drainer import LedgerDrainer
from tollway.metering.headers import rate_headers
from tollway.metering.protocol import LEDGER_FLUSH_SECONDS, Admission, RateState, StoreUnavailable, Ticket
from tollway.metering.resp import RespClient
from tollway.metering.resp_encode import bulks
from tollway.metering.row_json import record_to_json
from tollway.metering.scopes import ScopeMemo, too_large
from tollway.metering.scripts import Batcher, Script
from tollway.money import to_dollars, to_units
from tollway.types import CallRecord, Limits

_OK, _LIMITED, _NO_CREDIT, _CAPPED, _INIT_PROJECT, _INIT_KEY = range(6)
_DONE_TTL_MS = 120_000  # long enough for any settle pipeline retry
# (reserved tokens, admission time, project hold, key hold) of a call admit never saw (`record`)
_NOTHING_TAKEN = ("0", "0", "0", "0")
_new_state = tuple.__new__


def from_units(units: int | bytes | str) -> Decimal:
    """Redis's integer units (`tollway.money`) as dollars."""
    return to_dollars(int(units))


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class _Route:
    """What the admit and settle scripts are sent for one (key, model) that stays the same call after
    call: the scope names, and the arguments after the per-call ones, as values and encoded once."""

    __slots__ = ("admit_rest", "admit_start", "scopes", "settle_scopes", "settle_start")

    def __init__(self, meter: RedisMeter, admission: Admission, scopes: list[tuple[str, Limits]]):
        self.scopes = scopes  # the memo's list: a new one (new limits) makes a new route
        cap = "" if admission.spend_cap_units is None else admission.spend_cap_units
        self.admit_rest: list[Any] = [
            meter._max_call_ms, 1 if admission.credit_enforced else 0, cap,
            meter.prefix, admission.project_id, admission.key_id,
        ]  # fmt: skip
        # per scope, for settle: its name and what admit takes there that settle gives back or corrects
        # (settle skips the calls for what a scope does not limit)
        self.settle_scopes: list[str] = []
        for name, limits in scopes:
            self.admit_rest += [name, _limit_spec(limits)]
            self.settle_scopes += [name, _taken(limits)]
        # ARGV: rid, tokens, cost, now, then admit_rest | rid, actual, cost, row, reserved tokens, admission
        # time, project hold, key hold, then the settle rest
        settle_rest: list[Any] = [
            meter.prefix,
            _DONE_TTL_MS,
            admission.project_id,
            admission.key_id,
            *self.settle_scopes,
        ]
        self.admit_start = (meter._admit.packed_start(4 + len(self.admit_rest)), bulks(self.admit_rest))
        self.settle_start = (meter._settle.packed_start(8 + len(settle_rest)), bulks(settle_rest))


@dataclass(slots=True)
class RedisTicket(Ticket):
    """A ticket that remembers the route (scope names, encoded arguments) it was admitted on, and when
    (Redis's clock, ms): settle finds the call's window entries by its reserved tokens and that time."""

    route: _Route | None = None
    admitted_ms: int = 0


class RedisMeter:
    """Meter shared by every replica through one Redis (live state) and one SQL database (ledger)."""

    def __init__(
        self,
        redis: Redis,
        session_factory: ledger.SessionFactory,
        *,
        prefix: str = "tollway:",
        flush_interval: float = LEDGER_FLUSH_SECONDS,
        consumer_name: str | None = None,
        max_call_seconds: float = 600.0,
        reclaim_idle_ms: int = 30_000,
        clock: Callable[[], float] | None = None,
        fast_client: bool = True,
        settle_linger: float = 0.0,
    ):
        self._redis = redis
        # The hot scripts go over the lean client (metering/resp.py); None: all over redis-py.
        self._fast = RespClient.from_redis(redis) if fast_client else None
        self._session_factory = session_factory
        self.prefix = prefix
        self.consumer_name = consumer_name or default_consumer_name()
        self._max_call_ms = int(max_call_seconds * 1000)
        self._limited: ScopeMemo[str] = ScopeMemo(":".join)  # ("m", project, model) -> "m:project:model"
        self._clock = clock  # None: Redis's own clock (TIME), the same for every replica
        self._routes: dict[tuple[Any, ...], _Route] = {}
        self._admit = Script(redis, lua.ADMIT, self._fast)
        self._reap = Script(redis, lua.REAP)
        self._grant = Script(redis, lua.GRANT)
        # settle_linger > 0: settlements wait up to that long to leave with the next admit, one `send`
        # syscall (~8-11 µs of CPU) less per call under load. Off by default: a kill -9 inside that
        # window loses settlements of calls whose clients already had their answer.
        self._settle = Script(redis, lua.SETTLE, self._fast)
        self._settler = Batcher(self._settle, linger=settle_linger)
        self.drainer = LedgerDrainer(
            redis,
            session_factory,
            stream=f"{prefix}ledger",
            group="ledger-writers",
            consumer=self.consumer_name,
            # An entry waits at most `pace` to gather company, then one transaction. Each transaction
            # costs ~2 ms of CPU whatever its size, so a longer pace is cheaper per call: 1.5 x the
            # flush interval keeps rows durable in PostgreSQL within ~150 ms + the write at the default,
            # inside the 250 ms the ledger promises.
            block_ms=max(1, int(flush_interval * 1000)),
            pace=flush_interval * 1.5,
            batch=1000,
            reclaim_idle_ms=reclaim_idle_ms,
            fast=RespClient.from_redis(redis) if fast_client else None,  # a connection of its own
        )

    async def start(self) -> None:
        await self.drainer.start()
        self._settler.start()

    async def aclose(self) -> None:
        await self._settler.aclose()
        await self.drainer.aclose()
        if self._fast is not None:
            await self._fast.aclose()

    def abandon(self) -> None:
        """Drops this replica's process state without flushing anything: kill -9, for tests."""
        self._settler.abandon()
        self.drainer.abandon()
        if self._fast is not None:
            self._fast.abort()  # a killed process's connections close with it

    async def flush(self) -> None:
        await self._settler.flush()
        await self.drainer.drain()

    async def flush_settlements(self) -> None:
        """Sends queued settlements to Redis (their rows enter the stream) without draining it."""
        await self._settler.flush()

    # -- admission ---------------------------------------------------------------------------------

    async def admit(self, admission: Admission) -> Ticket:
        try:
            return await self._admit_call(admission)
        except (OSError, RedisError) as exc:  # Redis away or refusing: the pipeline answers 503
            raise StoreUnavailable(str(exc)) from exc

    async def _admit_call(self, admission: Admission) -> Ticket:
        cost = admission.max_cost_units
        route = self._route(admission)
        rid = admission.request_id
        packed = self._fast is not None and rid.isascii()  # str length = byte length
        for _ in range(3):
            if packed:
                tokens, units, now = str(admission.tokens), str(cost), self._now_text()
                start, rest = route.admit_start
                reply = await self._admit.run_packed(
                    start
                    + f"${len(rid)}\r\n{rid}\r\n${len(tokens)}\r\n{tokens}\r\n"
                    f"${len(units)}\r\n{units}\r\n${len(now)}\r\n{now}\r\n".encode()
                    + rest
                )
            else:
                now = self._now_text()
                reply = await self._admit([], [rid, admission.tokens, cost, now, *route.admit_rest])
            code = reply[0]
            if code == _OK:
                return self._ticket(admission, reply, cost, route)
            if code == _INIT_PROJECT:
                await self._init_project(admission.project_id)
            elif code == _INIT_KEY:
                await self._init_key(admission.key_id)
            else:
                self._refuse(code, reply, admission)
        raise RuntimeError("the live balance keys vanished while admitting (is Redis evicting keys?)")

    def _route(self, admission: Admission) -> _Route:
        scopes = self._limited.limited(admission)
        key = (admission.key_id, admission.model_id, admission.credit_enforced, admission.spend_cap_units)
        route = self._routes.get(key)
        if route is None or route.scopes is not scopes:
            if len(self._routes) >= 10_000:  # bounded, whatever callers do
                self._routes.clear()
            route = self._routes[key] = _Route(self, admission, scopes)
        return route

    def _ticket(self, admission: Admission, reply: list[Any], cost: int, route: _Route) -> Ticket:
        # Inline, not a helper per family: this runs on every admitted call. Lua's integers reach us
        # as ints, whichever client parsed them.
        limit = reply[2]
        requests = None if limit < 0 else _new_state(RateState, (limit, reply[3], reply[4]))
        limit = reply[5]
        tokens = None if limit < 0 else _new_state(RateState, (limit, reply[6], reply[7]))
        return RedisTicket(  # positional: a dataclass's __init__ costs more with keywords
            admission,
            requests,
            tokens,
            cost if admission.credit_enforced else 0,  # credit_hold
            0 if admission.spend_cap_units is None else cost,  # cap_hold
            False,  # settled
            route,
            reply[8],  # admitted_ms
        )

    @staticmethod
    def _refuse(code: int, reply: list[Any], admission: Admission) -> None:
        if code == _NO_CREDIT:
            raise InsufficientCredit("Insufficient credit: top up the project's balance to continue.")
        if code == _CAPPED:
            raise InsufficientCredit("This API key has reached its spend cap.")
        if code == _LIMITED:
            problem = too_large(admission)
            if problem is not None:
                raise InvalidRequest(problem)
            headers = rate_headers(_state(reply, 2), _state(reply, 5))
            retry = int(reply[1]) / 1000
            raise RateLimited("Rate limit reached; retry later.", retry_after=retry, headers=headers)
        raise RuntimeError(f"the admit script answered an unknown code {code!r}")

    # -- settlement --------------------------------------------------------------------------------

    async def settle(self, ticket: Ticket, record: CallRecord) -> None:
        if ticket.settled:
            return
        ticket.settled = True
        admission = ticket.admission
        record.project_id = record.project_id or admission.project_id
        record.key_id = record.key_id or admission.key_id
        assert isinstance(ticket, RedisTicket)
        route = ticket.route or self._route(admission)
        rid = record.request_id
        # What admit took, as it wrote it: settle finds the window entries and the money hold by these.
        took = (str(admission.tokens), str(ticket.admitted_ms), str(ticket.credit_hold), str(ticket.cap_hold))
        if self._fast is None or not rid.isascii():
            self._submit_settle(record, took, admission.project_id, admission.key_id, route.settle_scopes)
            return
        row, actual, units = record_to_json(record), str(record.usage.total_tokens), str(record.cost_units)
        start, rest = route.settle_start
        reserved, admitted, held_p, held_k = took
        self._settler.submit_packed(
            start
            + f"${len(rid)}\r\n{rid}\r\n${len(actual)}\r\n{actual}\r\n${len(units)}\r\n{units}\r\n"
            f"${len(row)}\r\n".encode()
            + row
            + f"\r\n${len(reserved)}\r\n{reserved}\r\n${len(admitted)}\r\n{admitted}\r\n"
            f"${len(held_p)}\r\n{held_p}\r\n${len(held_k)}\r\n{held_k}\r\n".encode()
            + rest
        )

    async def record(self, record: CallRecord) -> None:
        if record.cost_units and record.project_id:
            # the live balance must exist before a row for its project enters the stream
            await self._init_project(record.project_id)
        if record.cost_units and record.key_id:
            await self._init_key(record.key_id)
        self._submit_settle(record, _NOTHING_TAKEN, record.project_id or "", record.key_id or "", [])

    def _submit_settle(
        self, record: CallRecord, took: tuple[str, ...], project_id: str, key_id: str, scopes: list[str]
    ) -> None:
        args: list[Any] = [
            record.request_id, record.usage.total_tokens, record.cost_units, record_to_json(record),
            *took, self.prefix, _DONE_TTL_MS, project_id, key_id, *scopes,
        ]  # fmt: skip
        self._settler.submit([], args)

    # -- money -------------------------------------------------------------------------------------

    async def grant(self, project_id: str, amount: Decimal, note: str | None) -> Decimal:
        # The live balance must exist before the commit: seeded after it, from a read that already
        # includes this grant, it would then be credited a second time by the INCRBY below.
        await self._init_project(project_id)
        durable = await ledger.add_credit(self._session_factory, project_id, amount, note)
        live = await self._grant([f"{self.prefix}bal:{project_id}"], [to_units(amount), to_units(durable)])
        return from_units(live)

    async def balance(self, project_id: str) -> Decimal:
        await self.reap()
        await self._init_project(project_id)
        return from_units(await self._redis.get(f"{self.prefix}bal:{project_id}") or 0)

    async def key_spend(self, key_id: str) -> Decimal:
        await self._init_key(key_id)
        return from_units(await self._redis.get(f"{self.prefix}kspend:{key_id}") or 0)

    async def reap(self) -> int:
        """Returns the holds of calls past their deadline (admit also does this, a few at a time)."""
        return int(await self._reap([f"{self.prefix}holds"], [self._now_text(), self.prefix, 1000]))

    async def _init_project(self, project_id: str) -> None:
        """Seeds the live balance from SQL when Redis has none (first use, or a Redis that lost it)."""
        key = f"{self.prefix}bal:{project_id}"
        if await self._redis.exists(key):
            return
        durable = await ledger.durable_balance(self._session_factory, project_id)
        await self._redis.set(key, to_units(durable or Decimal(0)), nx=True)

    async def _init_key(self, key_id: str) -> None:
        spend_key, used_key = f"{self.prefix}kspend:{key_id}", f"{self.prefix}kused:{key_id}"
        if await self._redis.exists(spend_key):
            return
        spent = (await ledger.load_key_spend(self._session_factory, key_id)).get(key_id, Decimal(0))
        # both or neither: a key has no holds before its counters exist, so used == spent
        await self._redis.msetnx({spend_key: to_units(spent), used_key: to_units(spent)})

    def _now_text(self) -> str:
        return "-1" if self._clock is None else str(int(self._clock() * 1000))  # -1: Redis's own TIME


_SPECS: dict[Limits, str] = {}  # Limits -> "rpm tpm conc": a handful of distinct limit sets in practice


def _limit_spec(limits: Limits) -> str:
    spec = _SPECS.get(limits)
    if spec is None:
        spec = f"{_limit(limits.rpm)} {_limit(limits.tpm)} {_limit(limits.max_concurrency)}"
        if len(_SPECS) < 10_000:  # bounded, whatever callers do
            _SPECS[limits] = spec
    return spec


def _taken(limits: Limits) -> str:
    """What admit takes in a scope with these limits that settle must see to: "c" a concurrency slot,
    "t" a TPM reservation, "-" neither."""
    taken = ("c" if limits.max_concurrency is not None else "") + ("t" if limits.tpm is not None else "")
    return taken or "-"


def _limit(value: int | None) -> int:
    return -1 if value is None else value


def _state(reply: list[Any], at: int) -> RateState | None:
    limit = int(reply[at])
    return None if limit < 0 else RateState(limit, int(reply[at + 1]), int(reply[at + 2]))
