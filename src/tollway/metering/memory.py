"""The embedded meter: limits and balances in process memory, the ledger in SQL via a batched writer.

Admit and settle are plain synchronous code inside `async def`: with no `await` between checking and
taking, the event loop makes each one atomic, so no lock is needed and no I/O is done on the hot path.
Windows are exact sliding 60-second logs (see docs/metering.md), kept in integer nanoseconds of the
monotonic clock: the reset times the headers report are then integer arithmetic, where float seconds
cost an `int()` per family on every admit.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from tollway.errors import InsufficientCredit, InvalidRequest, RateLimited
from tollway.metering import ledger
from tollway.metering.headers import rate_headers
from tollway.metering.protocol import LEDGER_FLUSH_SECONDS, Admission, RateState, Ticket
from tollway.metering.scopes import ScopeMemo, too_large
from tollway.money import to_dollars, to_units
from tollway.types import CallRecord, Limits

WINDOW_NS = 60_000_000_000
_new_state = tuple.__new__


_COMPACT_AT = 65_536  # entries gone from the front of a log before its arrays are shifted down


class _Scope:
    """The sliding windows and the concurrency count of one key, project or (project, model).

    One log of admissions serves both windows: their times (ns) and token reservations in two flat
    int64 arrays, oldest first, from index `head` on (those before it have left the window). A busy
    scope holds a minute of calls (240,000 at 4,000 calls/s): as objects (an int and a token entry per
    call, freed a minute later) that was ~130 bytes a call, cold by the time it was freed; as arrays it
    is 16, read front to back. A ticket remembers its entry's sequence number (`base` + index)."""

    __slots__ = ("active", "base", "head", "times", "token_sum", "tokens")

    def __init__(self) -> None:
        self.times = array("q")  # admission times, ns
        self.tokens = array("q")  # tokens counted for each admission: reserved, then actual
        self.head = 0  # index of the oldest entry still in the window
        self.base = 0  # sequence number of index 0
        self.token_sum = 0  # tokens of the entries in the window
        self.active = 0

    def append(self, now: int, tokens: int) -> int:
        """Logs an admission; returns its sequence number."""
        seq = self.base + len(self.times)
        self.times.append(now)
        self.tokens.append(tokens)
        self.token_sum += tokens
        return seq

    def settle_tokens(self, seq: int, actual: int) -> None:
        """The entry's estimate becomes the actual count, if it is still in the window."""
        index = seq - self.base
        if index >= self.head:
            self.token_sum += actual - self.tokens[index]
            self.tokens[index] = actual

    def prune(self, now: int) -> None:
        edge = now - WINDOW_NS
        times, head, end = self.times, self.head, len(self.times)
        if head == end or times[head] > edge:
            return
        tokens, gone = self.tokens, 0
        while head < end and times[head] <= edge:
            gone += tokens[head]
            head += 1
        self.token_sum -= gone
        if head >= _COMPACT_AT and head * 2 >= end:  # shift down: amortised, one memmove per 65,536+
            del times[:head]
            del tokens[:head]
            self.base += head
            head = 0
        self.head = head

    def wait_for(self, limits: Limits, tokens: int, now: int) -> int:
        """Nanoseconds until this scope could admit the call; 0 when it can now. Prunes the log first
        (inline: one call per scope and admit instead of two)."""
        times, head = self.times, self.head
        if head != len(times) and times[head] <= now - WINDOW_NS:
            self.prune(now)
        wait = 0
        count = len(self.times) - self.head
        if limits.rpm is not None and count >= limits.rpm:
            wait = self.times[len(self.times) - limits.rpm] + WINDOW_NS - now if limits.rpm else WINDOW_NS
        if limits.tpm is not None and self.token_sum + tokens > limits.tpm:
            wait = max(wait, self._tokens_free_in(limits.tpm - tokens, now))
        if limits.max_concurrency is not None and self.active >= limits.max_concurrency:
            wait = max(wait, 1_000_000_000)  # a slot frees when some call ends: unknowable, so ask again soon
        return wait

    def _tokens_free_in(self, allowed: int, now: int) -> int:
        if allowed < 0:
            return WINDOW_NS  # larger than the whole limit: never fits; say a window
        total = self.token_sum
        for index in range(self.head, len(self.times)):
            total -= self.tokens[index]
            if total <= allowed:
                return self.times[index] + WINDOW_NS - now
        return WINDOW_NS


class _Account:
    """A project's live money in units (`tollway.money`): available = credited - spent (settled, written
    or not) - holds."""

    __slots__ = ("available",)

    def __init__(self, available: int):
        self.available = available


class _KeySpend:
    """A key's spend in units."""

    __slots__ = ("spent", "used")

    def __init__(self, spent: int):
        self.spent = spent  # settled
        self.used = spent  # settled + held against the key's spend cap


@dataclass(slots=True)
class MemoryTicket(Ticket):
    """A ticket that remembers the scopes it took from and its entries in their logs."""

    # per scope: the scope, its log entry's sequence number (-1 without a TPM limit), whether a slot was taken
    taken: list[tuple[_Scope, int, bool]] = field(default_factory=list)


class MemoryMeter:
    """Single-process meter: in-memory windows and balances, SQL ledger (SQLite or PostgreSQL)."""

    def __init__(
        self,
        session_factory: ledger.SessionFactory,
        *,
        flush_interval: float = LEDGER_FLUSH_SECONDS,
        clock: Callable[[], float] | None = None,
    ):
        """`clock`: seconds, for tests; by default the monotonic clock in ns, read without conversion."""
        self._session_factory = session_factory
        self._now: Callable[[], int] = time.monotonic_ns if clock is None else _nanoseconds(clock)
        self._scopes: dict[tuple[str, ...], _Scope] = {}
        self._limited = ScopeMemo(self._scope)
        self._accounts: dict[str, _Account] = {}
        self._keys: dict[str, _KeySpend] = {}
        self._db_lock = asyncio.Lock()
        self._writer = ledger.BatchWriter(session_factory, interval=flush_interval, lock=self._db_lock)

    async def start(self) -> None:
        balances = await ledger.load_balances(self._session_factory)
        self._accounts = {pid: _Account(to_units(amount)) for pid, amount in balances.items()}
        spend = await ledger.load_key_spend(self._session_factory)
        self._keys = {kid: _KeySpend(to_units(amount)) for kid, amount in spend.items()}
        self._writer.start()

    async def aclose(self) -> None:
        await self._writer.aclose()

    async def flush(self) -> None:
        await self._writer.flush()

    def abandon(self) -> None:
        """Drops all process state without writing it: kill -9, for tests."""
        self._writer.abandon()

    async def admit(self, admission: Admission) -> Ticket:
        return self.admit_now(admission)

    def admit_now(self, admission: Admission) -> MemoryTicket:
        """`admit` as a plain call (nothing here waits): the pipeline calls it directly, sparing the
        coroutine an `await` costs on every call."""
        now = self._now()
        scopes = self._limited.limited(admission)
        tokens = admission.tokens
        wait = 0
        for scope, limits in scopes:  # a plain loop: max() over a generator costs a frame per scope
            scope_wait = scope.wait_for(limits, tokens, now)
            if scope_wait > wait:
                wait = scope_wait
        if wait > 0:
            problem = too_large(admission)
            if problem is not None:
                raise InvalidRequest(problem)
            headers = rate_headers(*self._snapshot(scopes, now))
            raise RateLimited("Rate limit reached; retry later.", retry_after=wait / 1e9, headers=headers)
        hold = admission.max_cost_units
        account = self._accounts.get(admission.project_id) or self._account(admission.project_id)
        key = self._keys.get(admission.key_id) or self._key(admission.key_id)
        if admission.credit_enforced and account.available < hold:
            raise InsufficientCredit("Insufficient credit: top up the project's balance to continue.")
        cap = admission.spend_cap_units
        if cap is not None and key.used + hold > cap:
            raise InsufficientCredit("This API key has reached its spend cap.")
        taken = []
        for scope, limits in scopes:  # take from every scope (inline: a call per scope costs ~8 %)
            seq = -1
            if limits.tpm is not None:
                seq = scope.append(now, tokens)
            elif limits.rpm is not None:
                scope.append(now, 0)
            slot = limits.max_concurrency is not None
            if slot:
                scope.active += 1
            taken.append((scope, seq, slot))
        requests, window_tokens = self._snapshot(scopes, now)
        credit_hold = cap_hold = 0
        if admission.credit_enforced and hold:
            credit_hold = hold
            account.available -= hold
        if cap is not None and hold:
            cap_hold = hold
            key.used += hold
        # Positional: a dataclass's generated __init__ takes ~2.4x the instructions with keywords.
        return MemoryTicket(admission, requests, window_tokens, credit_hold, cap_hold, False, taken)

    def _scope(self, name: tuple[str, ...]) -> _Scope:
        scope = self._scopes.get(name)
        if scope is None:
            scope = self._scopes[name] = _Scope()
        return scope

    @staticmethod
    def _snapshot(scopes: list[tuple[_Scope, Limits]], now: int) -> tuple[RateState | None, RateState | None]:
        """The most restrictive window per family (`headers.most_restrictive`'s order: fewest left,
        then slowest to recover, then the smallest limit). Runs on every admit, usually for one scope:
        the comparison tuples are only built when a second scope competes, and each `RateState` is made
        by tuple.__new__ (the NamedTuple's own __new__ is a Python function)."""
        requests: RateState | None = None
        tokens: RateState | None = None
        for scope, limits in scopes:
            if limits.rpm is None and limits.tpm is None:
                continue
            count = len(scope.times) - scope.head
            reset = (scope.times[scope.head] + WINDOW_NS - now) // 1_000_000 if count else 0  # oldest
            limit = limits.rpm
            if limit is not None:
                left = limit - count
                if requests is None or (left, -reset, limit) < (requests[1], -requests[2], requests[0]):
                    requests = _new_state(RateState, (limit, left, reset))
            limit = limits.tpm
            if limit is not None:
                left = limit - scope.token_sum
                if tokens is None or (left, -reset, limit) < (tokens[1], -tokens[2], tokens[0]):
                    tokens = _new_state(RateState, (limit, left, reset))
        return requests, tokens

    async def settle(self, ticket: Ticket, record: CallRecord) -> None:
        assert isinstance(ticket, MemoryTicket)
        self.settle_now(ticket, record)

    def settle_now(self, ticket: MemoryTicket, record: CallRecord) -> None:
        """`settle` as a plain call, as `admit_now`, for a ticket of this meter's."""
        if ticket.settled:
            return
        ticket.settled = True
        actual = record.usage.total_tokens
        for scope, seq, slot in ticket.taken:
            if slot:
                scope.active -= 1
            if seq >= 0:
                scope.settle_tokens(seq, actual)
        admission = ticket.admission
        cost = record.cost_units
        record.project_id = record.project_id or admission.project_id
        record.key_id = record.key_id or admission.key_id
        account = self._accounts.get(admission.project_id) or self._account(admission.project_id)
        account.available += ticket.credit_hold - cost
        key = self._keys.get(admission.key_id) or self._key(admission.key_id)
        key.spent += cost
        key.used += cost - ticket.cap_hold
        self._writer.append(record)

    async def record(self, record: CallRecord) -> None:
        self.record_now(record)

    def record_now(self, record: CallRecord) -> None:
        """`record` as a plain call, as `admit_now`."""
        cost = record.cost_units
        if cost and record.project_id:
            self._account(record.project_id).available -= cost
        if cost and record.key_id:
            key = self._key(record.key_id)
            key.spent += cost
            key.used += cost
        self._writer.append(record)

    async def grant(self, project_id: str, amount: Decimal, note: str | None) -> Decimal:
        async with self._db_lock:
            await ledger.add_credit(self._session_factory, project_id, amount, note)
        account = self._account(project_id)
        account.available += to_units(amount)
        return to_dollars(account.available)

    async def balance(self, project_id: str) -> Decimal:
        return to_dollars(self._account(project_id).available)

    async def key_spend(self, key_id: str) -> Decimal:
        return to_dollars(self._key(key_id).spent)

    def _account(self, project_id: str) -> _Account:
        account = self._accounts.get(project_id)
        if account is None:
            # A project created after start has no ledger rows and no credit entries but through us.
            account = self._accounts[project_id] = _Account(0)
        return account

    def _key(self, key_id: str) -> _KeySpend:
        key = self._keys.get(key_id)
        if key is None:
            key = self._keys[key_id] = _KeySpend(0)
        return key


def _nanoseconds(clock: Callable[[], float]) -> Callable[[], int]:
    return lambda: round(clock() * 1e9)
