"""One call as it moves through the pipeline: who, what, where it went, what it cost, and the headers
that tell the caller so."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from multidict import istr

from tollway.types import Operation, Principal, Surface, Target, Usage

# Names of the headers every call answers with, as `istr`: aiohttp's CIMultiDict takes an istr as it
# is, where it case-folds a plain str on every response (~700 instructions a header, counted).
MODEL_HEADER = istr("x-tollway-model")
BACKEND_HEADER = istr("x-tollway-backend")
COST_HEADER = istr("x-tollway-cost")
REQUEST_ID_HEADER = istr("x-tollway-request-id")


@dataclass(slots=True)
class Call:
    request_id: str
    surface: Surface
    operation: Operation
    principal: Principal
    started: float = field(default_factory=time.perf_counter)
    started_wall: float = field(default_factory=time.time)
    model_requested: str = ""
    target: Target | None = None
    ticket: Any = None  # the meter's Ticket once admitted
    usage: Usage | None = None
    cost_units: int = 0  # 1e-10 dollars (`tollway.money`)
    ttfb: float | None = None
    streamed: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    def mark_first_byte(self) -> None:
        if self.ttfb is None:
            self.ttfb = self.elapsed_ms()

    def served_by(self, target: Target) -> None:
        self.target = target
        self.headers[MODEL_HEADER] = target.model_id
        self.headers[BACKEND_HEADER] = target.provider
