"""Every ratio the issue sets a target for, computed from the records of one run.

A check is skipped ("n/a") when a figure it needs was not measured (target or concurrency not run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Records = list[dict[str, Any]]
WORKER_SCALING_TARGET = 1.3  # 2 workers on 2 cores that also carry the load generator and the mock


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None
    target: str
    passed: bool | None
    unit: str = "×"
    detail: str = ""

    @property
    def verdict(self) -> str:
        return "n/a" if self.passed is None else ("PASS" if self.passed else "FAIL")

    def shown(self) -> str:
        if self.value is None:
            return "n/a"
        if not self.unit:
            return f"{self.value:,.0f}"
        return f"{self.value:,.2f}{self.unit}" if self.unit != " ms" else f"{self.value:+.3f} ms"


class Figures:
    """Look-ups into the records of a run."""

    def __init__(self, records: Records) -> None:
        self.runs = {(r["target"], r["workload"], r["conc"]): r for r in records if r.get("kind") == "run"}
        self.procs = {r["target"]: r for r in records if r.get("kind") == "process"}

    def get(self, target: str, workload: str, conc: int, field: str) -> float | None:
        run = self.runs.get((target, workload, conc))
        value = run.get(field) if run else None
        return float(value) if value is not None else None

    def added(self, target: str, workload: str, conc: int, field: str) -> float | None:
        mine, direct = self.get(target, workload, conc, field), self.get("direct", workload, conc, field)
        return None if mine is None or direct is None else mine - direct

    def errors(self, target: str, workload: str | None = None) -> int:
        return sum(
            int(r.get("errors", 0))
            for (t, w, _), r in self.runs.items()
            if t == target and (workload is None or w == workload)
        )

    def process(self, target: str, field: str) -> float | None:
        value = self.procs.get(target, {}).get(field)
        return float(value) if value is not None else None


def _quotient(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _at_least(name: str, value: float | None, floor: float, detail: str = "", extra_ok: bool = True) -> Check:
    passed = None if value is None else (value >= floor and extra_ok)
    return Check(name, value, f"≥ {floor:g}×", passed, detail=detail)


def _at_most(
    name: str, value: float | None, ceiling: float, unit: str, target: str, detail: str = ""
) -> Check:
    return Check(name, value, target, None if value is None else value <= ceiling, unit, detail)


def litellm_checks(f: Figures, gw: str) -> list[Check]:
    chat = _quotient(f.get("litellm", "chat", 16, "cpu_us_per_req"), f.get(gw, "chat", 16, "cpu_us_per_req"))
    stream = _quotient(
        f.get("litellm", "stream", 16, "cpu_us_per_req"), f.get(gw, "stream", 16, "cpu_us_per_req")
    )
    rps = _quotient(f.get(gw, "chat", 16, "rps"), f.get("litellm", "chat", 16, "rps"))
    clean = f.errors(gw, "chat") == 0 and f.errors("litellm", "chat") == 0
    return [
        _at_least("CPU per chat call: LiteLLM ÷ Tollway (c=16)", chat, 30),
        _at_least("CPU per 20-chunk stream: LiteLLM ÷ Tollway (c=16)", stream, 40),
        _at_least(
            "chat req/s at c=16: Tollway ÷ LiteLLM, zero errors",
            rps,
            20,
            detail="" if clean else "errors in a chat run",
            extra_ok=clean,
        ),
    ]


def floor_checks(f: Figures, gw: str) -> list[Check]:
    checks = []
    for workload in ("chat", "stream"):
        rps = _quotient(f.get("floor", workload, 16, "rps"), f.get(gw, workload, 16, "rps"))
        checks.append(_at_most(f"{workload} req/s at c=16: floor ÷ Tollway", rps, 2.5, "×", "≤ 2.5×"))
        cpu = _quotient(
            f.get(gw, workload, 16, "cpu_us_per_req"), f.get("floor", workload, 16, "cpu_us_per_req")
        )
        checks.append(_at_most(f"{workload} CPU per call at c=16: Tollway ÷ floor", cpu, 2.5, "×", "≤ 2.5×"))
    return checks


def latency_checks(f: Figures, gw: str) -> list[Check]:
    checks = []
    for workload in ("chat", "embeddings", "stream"):
        p50 = f.added(gw, workload, 1, "p50_ms")
        checks.append(_at_most(f"{workload}: added p50 at c=1 vs direct", p50, 0.5, " ms", "≤ +0.5 ms"))
    for workload in ("chat", "embeddings", "stream"):
        p99 = f.added(gw, workload, 64, "p99_ms")
        checks.append(_at_most(f"{workload}: added p99 at c=64 vs direct", p99, 5.0, " ms", "≤ +5 ms"))
        # At c=64 a closed loop saturates any one-core gateway, the floor included, so p99 there is the
        # stack's queueing; what Tollway adds on top of its own stack is the difference to the floor.
        over_floor = _difference(f.get(gw, workload, 64, "p99_ms"), f.get("floor", workload, 64, "p99_ms"))
        checks.append(
            _at_most(
                f"{workload}: p99 at c=64 over the floor's (same stack)", over_floor, 5.0, " ms", "≤ +5 ms"
            )
        )
    return checks


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _overhead(f: Figures, target: str, workload: str) -> float | None:
    ratio = _quotient(
        f.get(target, workload, 16, "cpu_us_per_req"),
        f.get("tollway-nometer", workload, 16, "cpu_us_per_req"),
    )
    return None if ratio is None else (ratio - 1) * 100


def metering_checks(f: Figures) -> list[Check]:
    checks = []
    for target, ceiling, label in (
        ("tollway", 15.0, "embedded"),
        ("tollway-scaleout", 30.0, "PostgreSQL + Redis"),
    ):
        for workload in ("chat", "stream"):
            checks.append(
                _at_most(
                    f"metering on ({label}) vs off: extra CPU per {workload} call (c=16)",
                    _overhead(f, target, workload),
                    ceiling,
                    " %",
                    f"≤ {ceiling:g} %",
                )
            )
    return checks


def process_checks(f: Figures) -> list[Check]:
    checks = []
    for target in ("tollway", "tollway-scaleout"):
        checks.append(
            _at_most(f"{target}: idle RSS", f.process(target, "idle_rss_mb"), 120, " MB", "≤ 120 MB")
        )
        checks.append(
            _at_most(f"{target}: start to ready", f.process(target, "startup_s"), 1.5, " s", "≤ 1.5 s")
        )
    scaling = _quotient(
        f.get("tollway-w2", "chat", 64, "rps") or f.get("tollway-w2", "chat", 16, "rps"),
        f.get("tollway-scaleout", "chat", 64, "rps") or f.get("tollway-scaleout", "chat", 16, "rps"),
    )
    checks.append(
        _at_least("--workers 2 ÷ 1 worker, chat req/s (c=64, else 16)", scaling, WORKER_SCALING_TARGET)
    )
    return checks


def error_checks(f: Figures, targets: list[str]) -> list[Check]:
    return [
        Check(f"{t}: errors over all runs", float(f.errors(t)), "0", f.errors(t) == 0, "")
        for t in targets
        if any(k[0] == t for k in f.runs)
    ]


ALL: list[Callable[[Figures, str], list[Check]]] = [litellm_checks, floor_checks, latency_checks]


def compute(records: Records, targets: list[str], gateway: str = "tollway") -> list[Check]:
    f = Figures(records)
    checks = [c for fn in ALL for c in fn(f, gateway)]
    return checks + metering_checks(f) + process_checks(f) + error_checks(f, targets)
