"""A call's ledger row as the Redis stream carries it: one JSON object (`row_from_json` reads it;
the drainer hands it to PostgreSQL undecoded).

This runs on every settle of the scale-out meter. Built as a dict (with a `datetime` and a `Decimal`) and
serialised by orjson, a row cost ~31,000 instructions (counted under callgrind), ~12,000 of it building
the 22-entry dict; this way, ~20,000. Here the fields
that repeat call after call (project, key, surface, operation, models, backend, error code, streamed)
are serialised by orjson once per combination and kept; the numbers go through orjson as a small dict;
our own request id, the time and the cost are written into a template. A request id that would need
escaping in JSON sends the whole row through orjson instead.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from tollway.metering.timetext import iso_time_of
from tollway.types import CallRecord

_HEADS: dict[tuple[Any, ...], str] = {}  # the repeating fields -> '{"project_id":...,' (bounded below)
_BOUND = 4096


def record_to_json(record: CallRecord) -> bytes:
    """The row: times in ISO 8601 (UTC), the cost as an exact decimal string (units × 1e-10)."""
    rid = record.request_id
    if '"' in rid or "\\" in rid or not rid.isprintable():  # ours never: "req_<hex>"
        return orjson.dumps(row_with(record, iso_time_of(record.started), f"{record.cost_units}e-10"))
    repeating = _repeating(record)
    head = _HEADS.get(repeating) or _head(repeating)
    # The numbers through orjson, which writes ints and floats (ryu) for less than f-string formatting
    # costs, and nan or inf as null; its object's "{" is dropped to continue ours.
    numbers = orjson.dumps(_numbers(record))
    created, cost = iso_time_of(record.started), record.cost_units
    return f'{head}"request_id":"{rid}","created_at":"{created}","cost":"{cost}e-10",'.encode() + numbers[1:]


def row_from_json(data: bytes) -> dict[str, Any]:
    """A stream row back as `ledger.record_to_row` gives it: the time a `datetime`, the cost a `Decimal`."""
    row: dict[str, Any] = orjson.loads(data)
    row["cost"] = Decimal(row["cost"])
    row["created_at"] = datetime.fromisoformat(row["created_at"])
    return row


def row_with(record: CallRecord, created_at: object, cost: object) -> dict[str, Any]:
    """The whole row as a dict, with its time and cost as the caller writes them (`ledger.record_to_row`
    gives a `datetime` and a `Decimal`)."""
    row = {"request_id": record.request_id, "created_at": created_at, "cost": cost}
    row.update(zip(_REPEATING, _repeating(record), strict=True))
    row.update(_numbers(record))
    return row


_REPEATING = (
    "project_id", "key_id", "surface", "operation", "model_requested", "model_served", "backend",
    "error_code", "streamed",
)  # fmt: skip


def _repeating(record: CallRecord) -> tuple[Any, ...]:
    """The fields that repeat call after call, in `_REPEATING` order."""
    return (
        record.project_id, record.key_id, record.surface, record.operation, record.model_requested,
        record.model_served, record.backend, record.error_code, record.streamed,
    )  # fmt: skip


def _numbers(record: CallRecord) -> dict[str, Any]:
    usage = record.usage
    return {
        "input_tokens": usage.input_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "output_tokens": usage.output_tokens,
        "images": usage.images,
        "audio_seconds": usage.audio_seconds,
        "characters": usage.characters,
        "latency_ms": record.latency_ms,
        "ttfb_ms": record.ttfb_ms,
        "status": record.status,
    }


def _head(repeating: tuple[Any, ...]) -> str:
    fields = dict(zip(_REPEATING, repeating, strict=True))
    head = orjson.dumps(fields).decode()[:-1] + ","  # the object left open for the per-call fields
    if len(_HEADS) >= _BOUND:
        _HEADS.clear()
    _HEADS[repeating] = head
    return head
