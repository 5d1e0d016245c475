"""The pipeline's side of metering: build the admission before the call, settle after it.

Limits and credits are taken atomically before the upstream is called (`Meter.admit`) and settled to the
actual usage after it (`Meter.settle`), which also appends the ledger row. With metering switched off,
only the cost is computed, for the `x-tollway-cost` header.
"""

from __future__ import annotations

import logging
from asyncio import get_running_loop

from tollway.catalog import CatalogModel
from tollway.catalog.tokens import estimate_tokens
from tollway.errors import ServiceUnavailable, TollwayError
from tollway.metering import (
    Admission,
    MemoryMeter,
    Meter,
    StoreUnavailable,
    Ticket,
    cost_units,
    worst_case_units,
)
from tollway.metering.headers import add_rate_headers
from tollway.metering.memory import MemoryTicket
from tollway.money import format_units, to_units
from tollway.observability import Metrics
from tollway.pipeline.call import COST_HEADER, Call
from tollway.types import CallRecord, ModelRequest, Operation, Surface, Usage

log = logging.getLogger("tollway.metering")
DEFAULT_MAX_OUTPUT = 4096


def max_output_tokens(request: ModelRequest, model: CatalogModel, prompt_tokens: int) -> int:
    body = request.body
    for field in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(field)
        if isinstance(value, int) and value > 0:
            n = body.get("n")  # choices: each may use the whole budget
            return value * n if isinstance(n, int) and n > 0 else value
    if model.max_output_tokens:
        return model.max_output_tokens
    if model.context_window:
        return max(1, model.context_window - prompt_tokens)
    return DEFAULT_MAX_OUTPUT


class Metering:
    def __init__(self, meter: Meter | None, metrics: Metrics | None = None):
        self.meter = meter
        self.metrics = metrics
        # The embedded meter does no I/O in admit and settle: called directly, without a coroutine each.
        self._memory = meter if isinstance(meter, MemoryMeter) else None

    async def admit(self, call: Call, model: CatalogModel, request: ModelRequest) -> None:
        if self.meter is None:
            return
        principal = call.principal
        prompt = (
            estimate_tokens(request.body, request.raw) if request.body.get("messages") or request.raw else 0
        )
        output = max_output_tokens(request, model, prompt) if call.operation in _TOKEN_OPERATIONS else 0
        # Positional: a dataclass's generated __init__ takes ~2.4x the instructions with keywords.
        admission = Admission(
            call.request_id,  # request_id
            principal.key_id,  # key_id
            principal.project_id,  # project_id
            model.id,  # model_id
            principal.key_limits,  # key_limits
            principal.project_limits,  # project_limits
            model.limits,  # model_limits
            prompt + output,  # tokens
            # max_cost_units: only worth computing when a balance or a spend cap can refuse the call
            worst_case_units(prompt, output, model.pricing)
            if principal.credit_enforced or principal.spend_cap is not None
            else 0,
            principal.credit_enforced,  # credit_enforced
            None if principal.spend_cap is None else to_units(principal.spend_cap),  # spend_cap_units
        )
        try:
            memory = self._memory
            ticket: Ticket
            if memory is not None:
                ticket = call.ticket = memory.admit_now(admission)
            else:
                ticket = call.ticket = await self.meter.admit(admission)
        except TollwayError as exc:
            refused = self.record(call, Usage(), exc.http_status, exc.error_code, call.elapsed_ms())
            await self.meter.record(refused)
            raise
        except StoreUnavailable as exc:
            # Without the shared store no limit or balance can be checked: refuse (fail closed), clearly.
            cause = exc.__cause__ or exc
            log.error("metering_store_unavailable: %s: %s", type(cause).__name__, cause)
            raise ServiceUnavailable(
                f"The gateway's metering store is unavailable; retry shortly. Request id {call.request_id}."
            ) from exc
        # The ticket's rate states as OpenAI's headers, written into the call's own (both meters' tickets).
        add_rate_headers(call.headers, ticket.requests, ticket.tokens)

    async def settle(
        self, call: Call, usage: Usage, status: int = 200, error_code: str | None = None
    ) -> None:
        """Prices the call for its cost header now; accounts for it (metrics, limits, credits, ledger)
        as soon as the answer is on its way.

        With the embedded meter (or none) nothing left waits on I/O, so the accounting is handed to the
        event loop's next turn: the caller's response (or a stream's last write) goes out in the current
        one, and the accounting runs while the caller reads it, instead of in front of it. The loop runs
        its ready callbacks in order, so this one runs before anything the answer could have caused: a
        request sent once the answer arrived is admitted against the settled limits and balance. A
        shared-store meter is awaited here, as its settlement is a round trip that can fail."""
        call.usage = usage
        if call.target is not None:
            call.cost_units = cost_units(usage, call.target.pricing)
        call.headers[COST_HEADER] = format_units(call.cost_units)
        latency_ms = call.elapsed_ms()  # once: the metrics and the ledger row carry the same figure
        ticket, call.ticket = call.ticket, None  # taken now: a call is settled once, whoever calls
        if self.meter is None or self._memory is not None:
            get_running_loop().call_soon(self._account, call, ticket, usage, status, error_code, latency_ms)
            return
        self._observe(call, usage, status, latency_ms)
        record = self.record(call, usage, status, error_code, latency_ms)
        if ticket is not None:
            await self.meter.settle(ticket, record)
        else:
            await self.meter.record(record)

    def _account(
        self,
        call: Call,
        ticket: MemoryTicket | None,
        usage: Usage,
        status: int,
        error_code: str | None,
        latency_ms: float,
    ) -> None:
        """The embedded meter's settlement, run by the loop just after the call's answer was written."""
        try:
            self._observe(call, usage, status, latency_ms)
            memory = self._memory
            if memory is None:
                return
            record = self.record(call, usage, status, error_code, latency_ms)
            if ticket is not None:
                memory.settle_now(ticket, record)
            else:
                memory.record_now(record)
        except Exception:  # the answer is gone: a failure here can only be logged (it is a bug)
            log.exception("settle_failed", extra={"request_id": call.request_id})

    def _observe(self, call: Call, usage: Usage, status: int, latency_ms: float) -> None:
        if self.metrics is None:
            return
        self.metrics.observe(  # positional: keywords cost ~2x the instructions of the call itself
            call.surface,  # surface (a StrEnum is its own str value: no descriptor call)
            call.operation,  # operation
            call.target.provider if call.target else None,  # backend
            status,  # status
            latency_ms / 1000.0,  # seconds
            usage.input_tokens,  # input_tokens
            usage.output_tokens,  # output_tokens
            call.cost_units,  # cost_units
        )

    def record(
        self, call: Call, usage: Usage, status: int, error_code: str | None, latency_ms: float
    ) -> CallRecord:
        target = call.target
        # Positional, as the admission.
        return CallRecord(
            call.request_id,  # request_id
            _PLAIN[call.surface],  # surface
            _PLAIN[call.operation],  # operation
            call.started_wall,  # started
            call.principal.project_id or None,  # project_id
            call.principal.key_id,  # key_id
            call.model_requested or None,  # model_requested
            target.model_id if target else None,  # model_served
            target.provider if target else None,  # backend
            usage,  # usage
            call.cost_units,  # cost_units
            latency_ms,  # latency_ms
            call.ttfb,  # ttfb_ms
            status,  # status
            error_code,  # error_code
            call.streamed,  # streamed
        )


_TOKEN_OPERATIONS = frozenset({Operation.CHAT, Operation.COMPLETION})

# A record's surface and operation as exact `str`s, looked up by member: `.value` is a descriptor call,
# and a StrEnum member itself costs the ledger's sqlite3 an adaptation lookup per bound value (~260 ns
# each, against nothing for a plain str; ~110 ns even with a registered adapter).
_PLAIN: dict[str, str] = {member: member.value for member in (*Surface, *Operation)}
