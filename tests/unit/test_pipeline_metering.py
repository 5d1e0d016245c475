"""`pipeline.Metering` hands the meter an admission and a call record with every field in its place.

Both are built positionally on the hot path (keywords cost ~2.4x the instructions), so a field order
that drifted from the dataclass would file a ledger row under the wrong project, key or model. Every
value here is distinct, so any swap shows.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from tollway.catalog.catalog import CatalogModel
from tollway.metering import Admission, Ticket
from tollway.observability import Metrics
from tollway.pipeline.call import Call
from tollway.pipeline.metering import Metering
from tollway.types import CallRecord, Limits, ModelRequest, Operation, Pricing, Principal, Surface, Usage

KEY_LIMITS, PROJECT_LIMITS, MODEL_LIMITS = Limits(rpm=1), Limits(rpm=2), Limits(rpm=3)
MODEL = CatalogModel(
    id="upstream:the-model",
    provider="upstream",
    upstream_model="the-model",
    capabilities=frozenset({"chat"}),
    pricing=Pricing(input_per_mtok=Decimal("1"), output_per_mtok=Decimal("2"), per_request=Decimal("0.5")),
    limits=MODEL_LIMITS,
)
PRINCIPAL = Principal(
    key_id="key_1",
    key_prefix="tw_1",
    project_id="proj_1",
    project_name="project",
    scopes=frozenset({"inference"}),
    key_limits=KEY_LIMITS,
    project_limits=PROJECT_LIMITS,
    spend_cap=Decimal("7"),
    credit_enforced=True,
)


class RecordingMeter:
    """The parts of the Meter protocol the pipeline calls on an admitted call."""

    def __init__(self) -> None:
        self.admissions: list[Admission] = []
        self.settled: list[CallRecord] = []

    async def admit(self, admission: Admission) -> Ticket:
        self.admissions.append(admission)
        return Ticket(admission)

    def headers(self, ticket: Ticket) -> dict[str, str]:
        return {}

    async def settle(self, ticket: Ticket, record: CallRecord) -> None:
        self.settled.append(record)


def test_admission_and_record_carry_each_field() -> None:
    meter = RecordingMeter()
    metrics = Metrics()
    metering = Metering(meter, metrics)  # type: ignore[arg-type]  # a partial Meter: what it calls
    call = Call("req_1", Surface.OPENAI, Operation.CHAT, PRINCIPAL, started_wall=1_700_000_000.25)
    call.model_requested = "alias"
    call.served_by(MODEL.target())
    call.streamed = True
    call.ttfb = 3.5
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    asyncio.run(metering.admit(call, MODEL, ModelRequest(body=body)))
    usage = Usage(input_tokens=5, output_tokens=6)
    asyncio.run(metering.settle(call, usage, status=201, error_code="partial"))

    (admission,) = meter.admissions
    assert (admission.request_id, admission.key_id, admission.project_id) == ("req_1", "key_1", "proj_1")
    assert admission.model_id == "upstream:the-model"
    assert admission.key_limits is KEY_LIMITS
    assert admission.project_limits is PROJECT_LIMITS
    assert admission.model_limits is MODEL_LIMITS
    assert admission.tokens > 10  # the prompt's estimate plus the 10 output tokens asked for
    assert admission.max_cost_units > 5_000_000_000  # at least the $0.5 per request
    assert admission.credit_enforced is True
    assert admission.spend_cap_units == 70_000_000_000  # $7

    (record,) = meter.settled
    assert (record.request_id, record.surface, record.operation) == ("req_1", "openai", "chat")
    # exact strs, not the StrEnum members: sqlite3 runs an adaptation lookup for any str subclass
    assert type(record.surface) is str and type(record.operation) is str
    assert record.started == 1_700_000_000.25
    assert (record.project_id, record.key_id) == ("proj_1", "key_1")
    assert (record.model_requested, record.model_served, record.backend) == (
        "alias",
        "upstream:the-model",
        "upstream",
    )
    assert record.usage is usage
    assert record.cost_units == 5 * 10_000 + 6 * 20_000 + 5_000_000_000  # 5 in, 6 out, one request
    assert record.latency_ms >= 0 and record.ttfb_ms == 3.5
    assert metrics.latency_sum == record.latency_ms / 1000.0  # one measurement for both
    assert (record.status, record.error_code, record.streamed) == (201, "partial", True)
