"""Every ratio the issue sets a target for, computed from the records of one run.

A check is skipped ("n/a") when a figure it needs was not measured (target or concurrency not run).
An "info" row is shown for context and judged against no target.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Records = list[dict[str, Any]]
# `--workers 2` against the most the machine can give it: the load generator, the mocks, PostgreSQL and
# Redis share the cores, so 2 workers cannot reach 2x one worker's req/s here (see worker_checks).
WORKER_CEILING_SHARE = 90.0  # % of that ceiling
ROUND_TARGETS = ("tollway", "tollway-nometer", "tollway-scaleout")  # the metering rounds (bench/rounds.py)
ROUND_WORKLOADS = ("chat", "stream")
BASELINE = "tollway-nometer"  # the metering-off side of every metering ratio
DEFAULT_LATENCY_MS = (50.0, 150.0)


def latency_range(meta: dict[str, Any]) -> str:
    """The slow mock's delay range of a run ("50-150 ms"), from its metadata record."""
    low, high = meta.get("latency_ms") or DEFAULT_LATENCY_MS
    return f"{low:g}-{high:g} ms"


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None
    target: str
    passed: bool | None
    unit: str = "×"
    detail: str = ""
    info: bool = False  # context only: no target applies, never PASS or FAIL

    @property
    def verdict(self) -> str:
        if self.info:
            return "info"
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
        self.rounds = [r for r in records if r.get("kind") == "round"]
        meta = next((r for r in records if r.get("kind") == "meta"), {})
        self.latency = latency_range(meta)  # the slow mock's delay range, for labels
        self.cores = int(meta.get("cores") or 2)

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

    def round_errors(self, target: str, workload: str | None = None) -> int:
        return sum(
            int(r.get("errors", 0))
            for r in self.rounds
            if r["target"] == target and (workload is None or r["workload"] == workload)
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
    # The ratios hold on any machine; the absolute targets (ms added, s to ready) do not: they were set
    # where this floor costs ~130 µs a chat call, and a slower or busier machine stretches them alike.
    speed = f.get("floor", "chat", 16, "cpu_us_per_req")
    checks.append(
        _info("machine: the floor's CPU per chat call at c=16 (the issue's reference: ~130 µs)", speed, " µs")
    )
    return checks


def _info(name: str, value: float | None, unit: str = " ms", detail: str = "") -> Check:
    return Check(name, value, "–", None, unit, detail, info=True)


def latency_checks(f: Figures, gw: str) -> list[Check]:
    checks = []
    for workload in ("chat", "embeddings", "stream"):
        p50 = f.added(gw, workload, 1, "p50_ms")
        checks.append(_at_most(f"{workload}: added p50 at c=1 vs direct", p50, 0.5, " ms", "≤ +0.5 ms"))
        # The bare stack's own share, measured in the same run: on a slow spell of this VM the floor alone
        # has added more than the target, which no gateway on that stack can then meet.
        floor_p50 = f.added("floor", workload, 1, "p50_ms")
        checks.append(_info(f"{workload}: the floor's added p50 at c=1 (the stack's own share)", floor_p50))
    # The p99 target is judged below saturation: 64 calls in flight on an upstream that takes
    # 50-150 ms each, which is what concurrency 64 means to a gateway's user.
    slow = f"chat with a {f.latency} upstream (chat-latency)"
    p99 = f.added(gw, "chat-latency", 64, "p99_ms")
    checks.append(_at_most(f"{slow}: added p99 at c=64 vs direct", p99, 5.0, " ms", "≤ +5 ms"))
    p50 = f.added(gw, "chat-latency", 1, "p50_ms")
    checks.append(_info(f"{slow}: added p50 at c=1 vs direct (the draws' spread dominates)", p50))
    for workload in ("chat", "embeddings", "stream"):
        # Unpaced, a closed loop at c=64 saturates any one-core gateway, the floor included: p99 there
        # is queueing (64 ÷ req/s), kept for context. Over the floor's is what Tollway adds to its stack.
        saturated = f"{workload} on the µs mock, saturated closed loop (queueing)"
        checks.append(_info(f"{saturated}: added p99 at c=64 vs direct", f.added(gw, workload, 64, "p99_ms")))
        over_floor = _difference(f.get(gw, workload, 64, "p99_ms"), f.get("floor", workload, 64, "p99_ms"))
        checks.append(_info(f"{saturated}: p99 at c=64 over the floor's (same stack)", over_floor))
    return checks


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def cpu_by_round(records: Records, target: str, workload: str) -> dict[int, float]:
    """Round number -> CPU µs/req of `target` on `workload` in the metering rounds (rounds without a
    figure left out)."""
    return {
        int(r["round"]): float(r["cpu_us_per_req"])
        for r in records
        if r.get("kind") == "round"
        and r["target"] == target
        and r["workload"] == workload
        and r.get("cpu_us_per_req") is not None
    }


def round_cpu(records: Records, target: str, workload: str) -> list[float]:
    """CPU µs/req of each metering round of `target` on `workload`, in round order."""
    by_round = cpu_by_round(records, target, workload)
    return [by_round[number] for number in sorted(by_round)]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def overhead_pct(on: float | None, off: float | None) -> float | None:
    """How much more CPU `on` takes than `off`, in percent."""
    return None if on is None or off is None or off == 0 else (on / off - 1) * 100


def paired_overheads(records: Records, target: str, workload: str) -> list[float]:
    """`target`'s extra CPU over tollway-nometer in each metering round that measured both, in round
    order. The two runs of a round are seconds apart, so a drift of the machine's speed between rounds
    (routine on a shared VM) moves both sides of a pair and cancels out of its ratio."""
    on, off = cpu_by_round(records, target, workload), cpu_by_round(records, BASELINE, workload)
    pairs = (overhead_pct(on[n], off[n]) for n in sorted(on.keys() & off.keys()))
    return [value for value in pairs if value is not None]


def metering_overhead(f: Figures, target: str, workload: str) -> tuple[float | None, str]:
    """Extra CPU per call of `target` over tollway-nometer at c=16, and how it was taken: the median
    of the rounds' paired overheads when there are rounds, else the two single runs."""
    paired = paired_overheads(f.rounds, target, workload)
    if paired:
        return median(paired), f"median of {len(paired)} interleaved rounds, paired"
    single = overhead_pct(
        f.get(target, workload, 16, "cpu_us_per_req"), f.get(BASELINE, workload, 16, "cpu_us_per_req")
    )
    return single, "single runs"


def metering_checks(f: Figures) -> list[Check]:
    checks = []
    for target, ceiling, label in (
        ("tollway", 15.0, "embedded"),
        ("tollway-scaleout", 30.0, "PostgreSQL + Redis"),
    ):
        for workload in ROUND_WORKLOADS:
            value, how = metering_overhead(f, target, workload)
            errors = f.round_errors(target, workload) + f.round_errors(BASELINE, workload)
            checks.append(
                _at_most(
                    f"metering on ({label}) vs off: extra CPU per {workload} call (c=16, {how})",
                    value,
                    ceiling,
                    " %",
                    f"≤ {ceiling:g} %",
                    detail=f"{errors} errors in its rounds" if errors else "",
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
    return checks + worker_checks(f)


def worker_checks(f: Figures) -> list[Check]:
    """`--workers 2` against one worker (both scale-out, chat at c=64, else 16), and against the most the
    machine could carry: with one worker, each call cost the whole machine (gateway, load generator,
    mocks, PostgreSQL, Redis, kernel) `machine_cpu_us_per_req`; all `cores` busy at that cost is the
    ceiling of req/s, whatever the number of workers. The check asks that two workers reach 90 % of it
    (or of 2x one worker, when the machine has room for that): a worker that starved, idled or made
    every call dearer would miss it. The plain ratio is shown beside it, judged by its ceiling."""
    conc = 64 if f.get("tollway-w2", "chat", 64, "rps") is not None else 16
    one, two = f.get("tollway-scaleout", "chat", conc, "rps"), f.get("tollway-w2", "chat", conc, "rps")
    scaling = _quotient(two, one)
    machine_us = f.get("tollway-scaleout", "chat", conc, "machine_cpu_us_per_req")
    ceiling = None
    if machine_us is not None and one:
        ceiling = min(2.0, f.cores * 1e6 / machine_us / one)
    share = None if scaling is None or ceiling is None else 100 * scaling / ceiling
    cpu = _quotient(
        f.get("tollway-w2", "chat", conc, "cpu_us_per_req"),
        f.get("tollway-scaleout", "chat", conc, "cpu_us_per_req"),
    )
    busy = f.get("tollway-w2", "chat", conc, "machine_busy_cores")
    return [
        Check(f"--workers 2 ÷ 1 worker, chat req/s (c={conc})", scaling, "–", None, info=True),
        Check(
            f"its ceiling on this machine: {f.cores} cores ÷ what a call cost the machine with 1 worker "
            f"({machine_us or 0:,.0f} µs), over 1 worker's req/s (2× at most)",
            ceiling,
            "–",
            None,
            info=True,
        ),
        Check(
            f"--workers 2: share of that ceiling reached (c={conc}; busy cores {busy or 0:.2f} of {f.cores})",
            share,
            f"≥ {WORKER_CEILING_SHARE:g} %",
            None if share is None else share >= WORKER_CEILING_SHARE,
            " %",
        ),
        Check(f"--workers 2: gateway CPU per call ÷ 1 worker's (c={conc})", cpu, "–", None, info=True),
    ]


def error_checks(f: Figures, targets: list[str]) -> list[Check]:
    checks = []
    for t in targets:
        if any(k[0] == t for k in f.runs):
            total = f.errors(t) + f.round_errors(t)
            where = "all runs and metering rounds" if any(r["target"] == t for r in f.rounds) else "all runs"
            checks.append(Check(f"{t}: errors over {where}", float(total), "0", total == 0, ""))
    return checks


ALL: list[Callable[[Figures, str], list[Check]]] = [litellm_checks, floor_checks, latency_checks]


def compute(records: Records, targets: list[str], gateway: str = "tollway") -> list[Check]:
    f = Figures(records)
    checks = [c for fn in ALL for c in fn(f, gateway)]
    return checks + metering_checks(f) + process_checks(f) + error_checks(f, targets)
