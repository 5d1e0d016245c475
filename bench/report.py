"""The markdown report: machine, versions, every ratio, the metering rounds, the process table, one
table per workload."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import ratios, rounds
from bench.targets import TARGETS

Records = list[dict[str, Any]]


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        memory = f"{mem_kb / 2**20:.1f} GiB"
    except (OSError, IndexError, ValueError):
        memory = "unknown"
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": model,
        "nproc": nproc,
        "memory": memory,
        "kernel": platform.release(),
        "load_avg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def versions(extra: dict[str, str | None]) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("tollway", "aiohttp", "uvloop", "orjson", "SQLAlchemy", "asyncpg", "redis"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    found["wrk"] = (wrk.stdout + wrk.stderr).split("[")[0].replace("wrk", "").strip() or "unknown"
    found.update({k: v for k, v in extra.items() if v})
    return found


def _ms(value: Any) -> str:
    return "–" if value is None else f"{float(value):,.3f}"


def _num(value: Any, digits: int = 0) -> str:
    return "–" if value is None else f"{float(value):,.{digits}f}"


def _added(run: dict[str, Any], direct: dict[str, Any] | None, field: str) -> str:
    if direct is None or run.get(field) is None or direct.get(field) is None or run["target"] == "direct":
        return "–"
    return f"{float(run[field]) - float(direct[field]):+,.3f}"


def workload_table(runs: Records, workload: str) -> list[str]:
    rows = [r for r in runs if r["workload"] == workload]
    paced = workload == "stream-paced"
    direct = {r["conc"]: r for r in rows if r["target"] == "direct"}
    head = "| target | c | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms |"
    head += " TTFB p50 ms |" if paced else ""
    head += " gateway CPU µs/req | PG + Redis CPU µs/req | mock CPU µs/req | ok | errors |"
    lines = [f"### {workload}", "", head, "|" + "---|" * (head.count("|") - 1)]
    for run in sorted(rows, key=lambda r: (r["conc"], _order(r["target"]))):
        near = direct.get(run["conc"])
        cells = [
            run["target"],
            str(run["conc"]),
            _num(run["rps"], 1),
            _ms(run["p50_ms"]),
            _ms(run["p99_ms"]),
            _added(run, near, "p50_ms"),
            _added(run, near, "p99_ms"),
        ]
        if paced:
            cells.append(_ms(run.get("ttfb_p50_ms")))
        cells += [
            _num(run.get("cpu_us_per_req")),
            _num(run.get("backing_cpu_us_per_req")),
            _num(run.get("mock_cpu_us_per_req")),
            _num(run.get("ok")),
            _errors(run),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _errors(run: dict[str, Any]) -> str:
    total = int(run.get("errors", 0))
    if not total:
        return "0"
    kinds = run.get("error_kinds") or {k[4:]: v for k, v in run.items() if k.startswith("err_") and v}
    return f"**{total}** ({', '.join(f'{k} {v}' for k, v in kinds.items())})"


def _cell(text: str) -> str:
    """Text made safe for one markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _order(target: str) -> int:
    names = list(TARGETS)
    return names.index(target) if target in names else len(names)


def process_table(records: Records) -> list[str]:
    lines = [
        "| target | what | ready s | idle RSS MB | peak RSS MB | processes | notes |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    notes = {r["target"]: _cell("; ".join(r["notes"])) for r in records if r.get("kind") == "notes"}
    for rec in sorted((r for r in records if r.get("kind") == "process"), key=lambda r: _order(r["target"])):
        target = rec["target"]
        note = notes.get(target, "")
        if rec.get("failed"):
            note = f"**did not start**: {_cell(rec['failed'])[-300:]} {note}"
        lines.append(
            f"| {target} | {TARGETS.get(target, '')} | {_num(rec.get('startup_s'), 2)} | "
            f"{_num(rec.get('idle_rss_mb'), 1)} | {_num(rec.get('peak_rss_mb'), 1)} | "
            f"{_num(rec.get('processes'))} | {note} |"
        )
    return [*lines, ""]


def checks_table(checks: list[ratios.Check]) -> list[str]:
    lines = ["| check | measured | target | verdict |", "|---|---:|---|---|"]
    for check in checks:
        verdict = f"**{check.verdict}**" if check.verdict == "FAIL" else check.verdict
        detail = f" ({check.detail})" if check.detail else ""
        lines.append(f"| {check.name}{detail} | {check.shown()} | {check.target} | {verdict} |")
    return [*lines, ""]


def render(records: Records, meta: dict[str, Any]) -> str:
    runs = [r for r in records if r.get("kind") == "run"]
    checks = ratios.compute(records, meta["targets"])
    lines = [f"# Tollway benchmark, {meta['started']}", "", f"Command: `{meta['command']}`", ""]
    lines += ["## Machine", ""] + [f"- **{k}**: {v}" for k, v in meta["machine"].items()]
    lines += [
        f"- **placement**: {meta['placement']}",
        f"- **schedule**: {meta['warmup']} s warm-up per workload, then {meta['duration']} s per "
        f"measured run; stream chunks 20; paced streams {meta['pace_ms']} ms between chunks; "
        f"chat-latency upstream delay uniform {ratios.latency_range(meta)} per call (seeded); "
        f"metering rounds {meta.get('metering_rounds', 0)}",
        "",
    ]
    lines += ["## Versions", "", " · ".join(f"{k} {v}" for k, v in meta["versions"].items()), ""]
    lines += ["## Ratios against the targets", "", *checks_table(checks)]
    lines += rounds.section(records)
    lines += ["## Processes", "", *process_table(records)]
    lines += ["## Workloads", ""]
    for workload in dict.fromkeys(r["workload"] for r in runs):
        lines += workload_table(runs, workload)
    problems = [r for r in records if r.get("kind") == "verify"]
    if problems:
        lines += ["## Wrong answers (workload skipped)", ""]
        lines += [f"- {p['target']} {p['workload']}: {p['problem']}" for p in problems] + [""]
    return "\n".join(lines)
