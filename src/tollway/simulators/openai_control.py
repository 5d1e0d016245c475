"""Server options, per-request controls (the ``x-sim-*`` headers), counters and the request recorder.

These are the simulator's test hooks, kept apart from the OpenAI wire logic so the handlers stay about
the protocol. Headers override the server-wide options for one request.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from tollway.simulators import openai_errors as err

DEFAULT_MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "gpt-3.5-turbo-instruct",
    "dall-e-3",
    "whisper-1",
    "tts-1",
)
FAIL_MODES = ("close", "error-event")
CONTROL_HEADERS = (
    "x-sim-fail",
    "x-sim-latency-ms",
    "x-sim-chunk-delay-ms",
    "x-sim-stream-chunks",
    "x-sim-fail-after-chunks",
    "x-sim-fail-mode",
    "x-sim-hang",
    "x-sim-retry-after",
    "x-sim-fail-times",
    "x-sim-fail-key",
)


@dataclass(frozen=True, slots=True)
class SimOptions:
    """Server-wide behaviour. ``extra_fields``: request fields accepted beyond OpenAI's (e.g. ``top_k``)."""

    api_key: str | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    strict_models: bool = True  # False: any model id is served, its kind guessed from the name
    extra_fields: frozenset[str] = frozenset()
    latency_ms: float = 0.0
    chunk_delay_ms: float = 0.0
    stream_chunks: int | None = None
    record: bool = True
    record_limit: int = 1000
    system_fingerprint: str = "fp_sim0000001"

    @classmethod
    def build(
        cls,
        *,
        models: Iterable[str] | None = None,
        extra_fields: Iterable[str] = (),
        **options: Any,
    ) -> SimOptions:
        return cls(
            models=tuple(models) if models is not None else DEFAULT_MODELS,
            extra_fields=frozenset(extra_fields),
            **options,
        )


@dataclass(frozen=True, slots=True)
class Controls:
    """What one request asked of the simulator, after headers are merged over the server options."""

    latency_ms: float = 0.0
    chunk_delay_ms: float = 0.0
    stream_chunks: int | None = None
    fail_status: int | None = None
    fail_after_chunks: int | None = None
    fail_mode: str = "close"
    hang: bool = False
    retry_after_s: float = 1.0
    fail_times: int | None = None  # fail only the first N requests that carry the same fail_key
    fail_key: str = ""


def read_controls(headers: Mapping[str, str], options: SimOptions, defaults: Controls) -> Controls:
    if not any(name in headers for name in CONTROL_HEADERS):
        return defaults  # the hot path: no per-request overrides
    mode = headers.get("x-sim-fail-mode", "close")
    if mode not in FAIL_MODES:
        raise err.invalid_value("x-sim-fail-mode", mode, list(FAIL_MODES))
    return Controls(
        latency_ms=_number(headers, "x-sim-latency-ms", options.latency_ms),
        chunk_delay_ms=_number(headers, "x-sim-chunk-delay-ms", options.chunk_delay_ms),
        stream_chunks=_optional_int(headers, "x-sim-stream-chunks", options.stream_chunks),
        fail_status=_optional_int(headers, "x-sim-fail", None),
        fail_after_chunks=_optional_int(headers, "x-sim-fail-after-chunks", None),
        fail_mode=mode,
        hang=headers.get("x-sim-hang", "0").lower() in ("1", "true", "yes"),
        retry_after_s=_number(headers, "x-sim-retry-after", 1.0),
        fail_times=_optional_int(headers, "x-sim-fail-times", None),
        fail_key=headers.get("x-sim-fail-key", ""),
    )


def _number(headers: Mapping[str, str], name: str, default: float) -> float:
    raw = headers.get(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise err.invalid(f"Invalid header '{name}': expected a number, got '{raw}'.", name) from None


def _optional_int(headers: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise err.invalid(f"Invalid header '{name}': expected an integer, got '{raw}'.", name) from None


@dataclass(slots=True)
class SimStats:
    requests_total: int = 0
    active_requests: int = 0
    disconnects_observed: int = 0
    errors_injected: int = 0
    error_responses: int = 0
    streams_started: int = 0
    streams_completed: int = 0
    streams_broken: int = 0
    hangs_started: int = 0
    requests_by_path: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def key_fingerprint(value: str) -> str:
    """Recorded in place of a credential: enough to tell keys apart, useless to replay."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]


_SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "proxy-authorization"})


class RequestRecorder:
    """The last ``limit`` requests, for tests to assert on what a client (the gateway) actually sent."""

    def __init__(self, limit: int) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)

    def add(self, method: str, path: str, query: str, headers: Mapping[str, str], body: Any) -> None:
        # Names lowercased (HTTP does not care, tests should not have to); credentials fingerprinted.
        safe: dict[str, str] = {}
        for name, value in headers.items():
            lower = str(name).lower()
            safe[lower] = key_fingerprint(value) if lower in _SECRET_HEADERS else value
        self._entries.append(
            {
                "time": time.time(),
                "method": method,
                "path": path,
                "query": query,
                "headers": safe,
                "body": body,
            }
        )

    def entries(self) -> list[dict[str, Any]]:
        return list(self._entries)

    def clear(self) -> None:
        self._entries.clear()
