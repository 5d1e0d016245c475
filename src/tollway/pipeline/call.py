"""One call as it moves through the pipeline: who, what, where it went, what it cost, and the headers
that tell the caller so."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tollway.types import Operation, Principal, Surface, Target, Usage


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
        self.headers["x-tollway-model"] = target.model_id
        self.headers["x-tollway-backend"] = target.provider
