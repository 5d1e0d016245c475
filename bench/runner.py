"""The schedule: for each target, start it, check it answers right, warm up, measure every workload.

Each measured run records the load generator's figures (req/s, latency percentiles, errors) and
the CPU seconds the target's process tree and the mocks used during it, from /proc.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import load
from bench.measure import machine_busy_seconds, tree_cpu_seconds, tree_memory
from bench.targets import BenchEnv, Running, spend_note, start_target

SETTLE_S = 1.0  # after ready, before the idle RSS sample
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello, how are you today? Please answer briefly."},
]


@dataclass(frozen=True)
class Workload:
    name: str
    path: str
    body: dict[str, Any]
    tool: str  # "wrk" or "stream" (the aiohttp client)
    concs: tuple[int, ...]
    stream: bool = False
    upstream: str = "mock"  # which mock serves its model: "mock", "paced" or "slow" (see Running.base_for)


def workloads(concs: tuple[int, ...], paced_concs: tuple[int, ...]) -> list[Workload]:
    """Every workload. chat-latency is chat on a model whose mock answers after 50-150 ms (the range
    is an option): below saturation, so its p99 is the gateway's added tail, not queueing."""
    chat = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 32}
    stream = {**chat, "stream": True, "stream_options": {"include_usage": True}}
    return [
        Workload("chat", "/v1/chat/completions", chat, "wrk", concs),
        Workload(
            "embeddings",
            "/v1/embeddings",
            {"model": "text-embedding-3-small", "input": "The quick brown fox jumps over the lazy dog."},
            "wrk",
            concs,
        ),
        Workload("stream", "/v1/chat/completions", stream, "wrk", concs, stream=True),
        Workload(
            "stream-paced",
            "/v1/chat/completions",
            {**stream, "model": "gpt-4o-mini-paced"},
            "stream",
            paced_concs,
            stream=True,
            upstream="paced",
        ),
        Workload(
            "chat-latency",
            "/v1/chat/completions",
            {**chat, "model": "gpt-4o-mini-slow"},
            "wrk",
            concs,
            upstream="slow",
        ),
    ]


@dataclass
class Schedule:
    env: BenchEnv
    workloads: list[Workload]
    duration: float
    warmup: float
    mock_pids: list[int]
    sink: Callable[[dict[str, Any]], None]

    def body_file(self, workload: Workload) -> Path:
        path = self.env.run_dir / "bodies" / f"{workload.name}.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(orjson.dumps(workload.body))
        return path

    def run_target(self, name: str) -> None:
        log(f"== {name}: starting")
        try:
            running = start_target(name, self.env)
        except Exception as exc:
            log(f"!! {name} did not start: {exc}")
            self.sink({"kind": "process", "target": name, "failed": str(exc)})
            return
        try:
            self._measure_target(running)
        finally:
            running.stop()
            if running.notes:
                self.sink({"kind": "notes", "target": name, "notes": running.notes})

    def _measure_target(self, running: Running) -> None:
        time.sleep(SETTLE_S if running.pid else 0)
        idle = tree_memory(running.pid) if running.pid else None
        log(
            f"   {running.name} ready in {running.startup_s or 0:.2f} s"
            + (f", idle RSS {idle.rss_mb} MB" if idle else "")
        )
        for workload in self.workloads:
            try:
                self._run_workload(running, workload)
            except Exception as exc:  # one broken workload must not lose the rest of the run
                self._problem(running, workload, f"{type(exc).__name__}: {exc}")
        spend = spend_note(running)
        if spend:
            running.notes.append(spend)
        process: dict[str, Any] = {"kind": "process", "target": running.name, "startup_s": running.startup_s}
        if running.pid and idle:
            peak = tree_memory(running.pid)
            process.update(
                idle_rss_mb=idle.rss_mb, peak_rss_mb=max(peak.hwm_mb, peak.rss_mb), processes=peak.processes
            )
        self.sink(process)

    def _url(self, running: Running, workload: Workload) -> str:
        return running.base_for(workload.upstream) + workload.path

    def _run_workload(self, running: Running, workload: Workload) -> None:
        if not self.verify(running, workload):
            return
        self.load(running, workload, max(workload.concs), self.warmup)
        for conc in workload.concs:
            self.measure(running, workload, conc)

    def verify(self, running: Running, workload: Workload) -> bool:
        """One request; False (and a "verify" record) when the answer has the wrong shape."""
        url = self._url(running, workload)
        problem = load.verify(url, orjson.dumps(workload.body), running.key, workload.stream)
        if problem:
            self._problem(running, workload, f"wrong answer: {problem}")
        return problem is None

    def _problem(self, running: Running, workload: Workload, problem: str) -> None:
        log(f"!! {running.name} {workload.name}: {problem}")
        self.sink({"kind": "verify", "target": running.name, "workload": workload.name, "problem": problem})

    def load(
        self, running: Running, workload: Workload, conc: int, seconds: float, idle_first: bool = True
    ) -> dict[str, Any]:
        if idle_first:
            wait_idle(running.pid)
        prefix, body = self.env.load_prefix(), self.body_file(workload)
        url = self._url(running, workload)
        if workload.tool == "wrk":
            base = url[: -len(workload.path)]
            return load.run_wrk(prefix, base, workload.path, body, running.key, conc, seconds)
        return load.run_stream_client(prefix, self.env.python, url, body, running.key, conc, seconds)

    def measure(self, running: Running, workload: Workload, conc: int, **extra: Any) -> dict[str, Any]:
        """One measured run; its record (kind "run", or what `extra` says) goes to the sink."""
        wait_idle(running.pid)  # before the CPU counters are read, so that the wait is not charged
        cpu0, mock0 = tree_cpu_seconds(running.pid), self._mock_cpu()
        backing0 = sum(tree_cpu_seconds(pid) for pid in running.backing_pids)
        machine0, wall0 = machine_busy_seconds(), time.monotonic()
        result = self.load(running, workload, conc, self.duration, idle_first=False)
        machine, wall = machine_busy_seconds() - machine0, time.monotonic() - wall0
        cpu = tree_cpu_seconds(running.pid) - cpu0
        mock = self._mock_cpu() - mock0
        backing = sum(tree_cpu_seconds(pid) for pid in running.backing_pids) - backing0
        if not result["ok"]:  # nothing finished within the run: as bad as an error
            result["error_kinds"] = {**result.get("error_kinds", {}), "no 2xx response in the run": 1}
            result["errors"] += 1
        ok = max(1, result["ok"])
        record = {
            "kind": "run",
            "target": running.name,
            "workload": workload.name,
            "conc": conc,
            **result,
            "cpu_s": round(cpu, 3) if running.pid else None,
            "cpu_us_per_req": round(cpu / ok * 1e6, 1) if running.pid and result["ok"] else None,
            "mock_cpu_us_per_req": round(mock / ok * 1e6, 1) if result["ok"] else None,
            "backing_cpu_us_per_req": round(backing / ok * 1e6, 1) if running.backing_pids else None,
            # Everything the run cost the machine (gateway, load generator, mocks, PostgreSQL, Redis, the
            # kernel): what bounds `--workers N` when the load generator shares the cores.
            "machine_busy_cores": round(machine / wall, 3),
            "machine_cpu_us_per_req": round(machine / ok * 1e6, 1) if result["ok"] else None,
            **extra,
        }
        self.sink(record)
        tag = f" round {extra['round']}" if "round" in extra else ""
        log(
            f"   {running.name:17s} {workload.name:13s} c={conc:<3d} {result['rps']:>9.1f} req/s "
            f"p50 {result['p50_ms']} ms p99 {result['p99_ms']} ms errors {result['errors']} "
            f"cpu {record['cpu_us_per_req']} µs/req{tag}"
        )
        return record

    def _mock_cpu(self) -> float:
        return sum(tree_cpu_seconds(pid) for pid in self.mock_pids)


def wait_idle(pid: int | None, window: float = 0.25, busy: float = 0.02, limit: float = 60.0) -> None:
    """Wait until the target stops burning CPU: a slow gateway may still be working through the
    requests a previous run abandoned, and that work must not be charged to the next run."""
    if pid is None:
        return
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = tree_cpu_seconds(pid)
        time.sleep(window)
        if tree_cpu_seconds(pid) - before <= busy:
            return


def log(message: str) -> None:
    print(time.strftime("%H:%M:%S"), message, flush=True)


class Recorder:
    """Appends each record to results.jsonl as it comes and keeps them for the report."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []

    def __call__(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        with self.path.open("a") as out:
            out.write(json.dumps(record) + "\n")
