"""The stream's ledger rows: the template path writes exactly what the general (orjson) path writes,
and whatever the template cannot carry still comes out as valid JSON that reads back to the same row."""

from __future__ import annotations

import random

import orjson
import pytest

from tollway.metering import ledger, row_json
from tollway.metering.timetext import iso_time_of
from tollway.types import CallRecord, Usage


def record(**changes: object) -> CallRecord:
    values: dict[str, object] = dict(
        request_id="req_0123456789abcdef0000002a",
        surface="openai",
        operation="chat",
        started=1_790_000_000.123456,
        project_id="proj_1",
        key_id="key_1",
        model_requested="gpt-4o-mini",
        model_served="upstream:gpt-4o-mini",
        backend="upstream",
        usage=Usage(input_tokens=14, cached_input_tokens=2, output_tokens=20, audio_seconds=0.5),
        cost_units=123_456,
        latency_ms=1.234,
        ttfb_ms=None,
        status=200,
    )
    values.update(changes)
    return CallRecord(**values)  # type: ignore[arg-type]


ODD = [
    record(),
    record(ttfb_ms=0.25, streamed=True, error_code="upstream_error", status=502),
    record(project_id=None, key_id=None, model_requested=None, model_served=None, backend=None),
    record(model_requested='quote " back\\slash \n newline \x01 ünïcode 模型'),  # the client's own text
    record(request_id='req_"quoted"'),  # needs escaping: the general path
    record(request_id="req_\ttab"),
    record(latency_ms=float("inf")),  # not JSON: the general path (orjson writes null)
    record(ttfb_ms=float("nan")),
    record(usage=Usage(audio_seconds=float("inf"))),
    record(cost_units=-5, latency_ms=1e-7, ttfb_ms=123456789.5),
    record(usage=Usage(input_tokens=10**12), cost_units=10**19),
    record(started=0.0000005),
]


def general(call: CallRecord) -> bytes:
    """The row through orjson whole: what the template must equal."""
    return orjson.dumps(row_json.row_with(call, iso_time_of(call.started), f"{call.cost_units}e-10"))


@pytest.mark.parametrize("call", ODD, ids=range(len(ODD)))
def test_the_row_is_valid_json_and_reads_back(call: CallRecord) -> None:
    written = row_json.record_to_json(call)
    assert orjson.loads(written) == orjson.loads(general(call))
    expected = ledger.record_to_row(call)
    for name in ("latency_ms", "ttfb_ms", "audio_seconds"):  # not finite: orjson writes null
        if isinstance(expected[name], float) and expected[name] - expected[name] != 0:
            expected[name] = None
    assert row_json.row_from_json(written) == expected


def test_cached_heads_never_mix_up_calls() -> None:
    rng = random.Random(3)
    for n in range(2_000):
        call = record(
            request_id=f"req_{n:08x}",
            project_id=rng.choice(["a", "b", None]),
            key_id=rng.choice(["k1", "k2"]),
            model_requested=rng.choice(["m", "n", 'q"']),
            error_code=rng.choice([None, "rate_limited"]),
            streamed=rng.choice([True, False]),
            status=rng.choice([200, 429]),
        )
        assert orjson.loads(row_json.record_to_json(call)) == orjson.loads(general(call))
