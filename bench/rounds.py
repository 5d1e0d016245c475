"""Interleaved, repeated runs for the metering ratios, and their table in the report.

A metering check compares two gateways' CPU per request to within 15 %, but on a shared VM one run
differs from the next by up to ±20 %, and in the normal schedule the two targets run minutes apart.
So after the normal schedule, the Tollway set-ups that differ only in metering (`tollway`,
`tollway-nometer`, `tollway-scaleout`, those selected) are started side by side, each pinned to
CPU 1 as usual (an idle gateway costs next to nothing), and take turns: every round measures chat
and stream at c=16 on each of them, in an order that rotates by one each round so that none always
goes first. A drift of the machine then hits all of them alike, and the metering checks use each
target's median over the rounds (bench/ratios.py).
"""

from __future__ import annotations

from typing import Any, TypeVar

from bench.ratios import (
    BASELINE,
    ROUND_TARGETS,
    ROUND_WORKLOADS,
    cpu_by_round,
    median,
    overhead_pct,
    paired_overheads,
    round_cpu,
)
from bench.runner import Schedule, Workload, log, wait_idle, workloads
from bench.targets import Running, spend_note, start_target

ROUND_CONC = 16  # the metering checks' concurrency
T = TypeVar("T")
Records = list[dict[str, Any]]


def round_targets(names: list[str]) -> list[str]:
    return [n for n in ROUND_TARGETS if n in names]


def rotated(items: list[T], shift: int) -> list[T]:
    """`items` rotated left by `shift`: round 0 keeps the order, round 1 starts with the second..."""
    if not items:
        return []
    k = shift % len(items)
    return items[k:] + items[:k]


def run_rounds(schedule: Schedule, names: list[str], rounds: int) -> None:
    if rounds <= 0:
        return
    chosen = round_targets(names)
    if len(chosen) < 2:
        log(f"metering rounds skipped: they need two of {', '.join(ROUND_TARGETS)} among the targets")
        return
    work = [w for w in workloads((ROUND_CONC,), (ROUND_CONC,)) if w.name in ROUND_WORKLOADS]
    log(f"== metering rounds: {rounds} × chat, stream at c={ROUND_CONC} on {', '.join(chosen)}, side by side")
    started: list[Running] = []
    try:
        for name in chosen:
            _start(schedule, name, started)
        if len(started) >= 2:
            _run(schedule, started, work, rounds)
    finally:
        for running in started:
            _stop(schedule, running)


def _start(schedule: Schedule, name: str, started: list[Running]) -> None:
    try:  # a second instance: own data directory, port, database and Redis number
        started.append(start_target(name, schedule.env, instance="rounds"))
    except Exception as exc:
        log(f"!! {name} did not start for the rounds: {exc}")
        schedule.sink({"kind": "round-notes", "target": name, "notes": [f"did not start: {exc}"]})


def _run(schedule: Schedule, started: list[Running], work: list[Workload], rounds: int) -> None:
    usable = {w.name: [r for r in started if _answers(schedule, r, w)] for w in work}
    for workload in work:  # fresh processes: warm each up once, before the first round
        for running in usable[workload.name]:
            schedule.load(running, workload, ROUND_CONC, schedule.warmup)
    for index in range(rounds):
        order = rotated(started, index)
        log(f"   round {index + 1}: {', '.join(r.name for r in order)}")
        for workload in work:
            for position, running in enumerate(order, 1):
                if running in usable[workload.name]:
                    _measure(schedule, started, running, workload, index + 1, position)


def _answers(schedule: Schedule, running: Running, workload: Workload) -> bool:
    try:
        return schedule.verify(running, workload)
    except Exception as exc:
        log(f"!! {running.name} {workload.name}: {exc}")
        return False


def _measure(
    schedule: Schedule, started: list[Running], running: Running, workload: Workload, round_no: int, pos: int
) -> None:
    # The others must be idle too: one still working off abandoned requests would share CPU 1.
    for other in started:
        if other is not running:
            wait_idle(other.pid)
    try:
        schedule.measure(running, workload, ROUND_CONC, kind="round", round=round_no, position=pos)
    except Exception as exc:  # one failed run must not lose the other rounds
        log(f"!! {running.name} {workload.name} round {round_no}: {type(exc).__name__}: {exc}")


def _stop(schedule: Schedule, running: Running) -> None:
    spend = spend_note(running)  # before stopping: evidence that metering ran in the rounds
    running.stop()  # the same teardown as the schedule's: database dropped, Redis number flushed
    notes = ([spend] if spend else []) + running.notes
    schedule.sink({"kind": "round-notes", "target": running.name, "notes": notes})


# --- the report's table ----------------------------------------------------------------------------


def section(records: Records) -> list[str]:
    """The "Metering rounds" section: each round's CPU per call, the medians, the per-round overhead."""
    rounds = [r for r in records if r.get("kind") == "round"]
    if not rounds:
        return []
    numbers = sorted({int(r["round"]) for r in rounds})
    targets = [t for t in ROUND_TARGETS if any(r["target"] == t for r in rounds)]
    head = "| workload | target | " + " | ".join(f"round {n}" for n in numbers) + " | median | min–max |"
    lines = [
        "## Metering rounds",
        "",
        f"{', '.join(targets)} running side by side, chat and stream at c={ROUND_CONC}, one run each per "
        "round, order rotated every round. Gateway CPU µs/req; the metering checks above use the "
        "medians. In the *extra CPU* rows each round pairs the two targets' runs of that round, and the "
        "median column is the overhead of the two medians (the checked figure).",
        "",
        head,
        "|---|---|" + "---:|" * (len(numbers) + 2),
    ]
    for workload in ROUND_WORKLOADS:
        lines += [_cpu_row(rounds, workload, t, numbers) for t in targets]
        lines += [_overhead_row(rounds, workload, t, numbers) for t in targets if t != BASELINE]
    lines += ["", *_order_lines(rounds, numbers), *_notes(records), ""]
    return lines


def _by_round(rounds: Records, workload: str, target: str) -> dict[int, dict[str, Any]]:
    return {int(r["round"]): r for r in rounds if r["workload"] == workload and r["target"] == target}


def _cpu_row(rounds: Records, workload: str, target: str, numbers: list[int]) -> str:
    runs = _by_round(rounds, workload, target)
    cells = [_cpu_cell(runs.get(n)) for n in numbers]
    values = round_cpu(rounds, target, workload)
    mid = median(values)
    spread = f"{min(values):,.0f}–{max(values):,.0f}" if values else "–"
    return f"| {workload} | {target} | {' | '.join(cells)} | {_fmt(mid, '{:,.0f}')} | {spread} |"


def _cpu_cell(run: dict[str, Any] | None) -> str:
    if run is None:
        return "–"
    cell = _fmt(run.get("cpu_us_per_req"), "{:,.0f}")
    return f"{cell} (**{run['errors']} errors**)" if run.get("errors") else cell


def _overhead_row(rounds: Records, workload: str, target: str, numbers: list[int]) -> str:
    on, off = cpu_by_round(rounds, target, workload), cpu_by_round(rounds, BASELINE, workload)
    per_round = [overhead_pct(on.get(n), off.get(n)) for n in numbers]
    cells = [_fmt(v, "{:+.1f} %") for v in per_round]
    checked = median(paired_overheads(rounds, target, workload))  # what the ratio check uses
    known = [v for v in per_round if v is not None]
    spread = f"{min(known):+.1f} to {max(known):+.1f} %" if known else "–"
    label = f"*extra CPU, {target} vs {BASELINE}*"
    return f"| {workload} | {label} | {' | '.join(cells)} | {_fmt(checked, '{:+.1f} %')} | {spread} |"


def _fmt(value: Any, pattern: str) -> str:
    return "–" if value is None else pattern.format(float(value))


def _order_lines(rounds: Records, numbers: list[int]) -> list[str]:
    lines = []
    for n in numbers:
        firsts = sorted(
            (r["position"], r["target"]) for r in rounds if r["round"] == n and r["workload"] == "chat"
        )
        lines.append(f"- round {n} order: {', '.join(t for _, t in firsts) or '–'}")
    return lines


def _notes(records: Records) -> list[str]:
    return [
        f"- {r['target']} (rounds instance): {'; '.join(r['notes'])}"
        for r in records
        if r.get("kind") == "round-notes" and r.get("notes")
    ]
