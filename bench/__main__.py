"""`python -m bench`: run the benchmark and write bench/results/<timestamp>/{report.md,results.jsonl}.

    python -m bench                      # all targets, c = 1, 16, 64, 7 metering rounds; 5 s runs (~17 min)
    python -m bench --quick              # smoke test: 1 s runs, c = 16 only, no LiteLLM, no rounds
    python -m bench --targets direct,floor,tollway --duration 8
    python -m bench --quick --targets tollway,tollway-nometer --metering-rounds 3
    python -m bench --litellm-venv /tmp/anchor/litellm-venv

See docs/performance.md for what each figure means.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import backing, report, rounds
from bench.load import ensure_wrk
from bench.measure import cpu_count
from bench.runner import Recorder, Schedule, log, workloads
from bench.targets import TARGETS, BenchEnv, free_port, start_mock, stop_process, version_of
from bench.upstream import parse_range_ms

ROOT = Path(__file__).resolve().parent
DEFAULT_LITELLM = Path("/tmp/anchor/litellm-venv")


WORKLOADS = ("chat", "embeddings", "stream", "stream-paced", "chat-latency")


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.replace(",", " ").split())


def _range(text: str) -> tuple[float, float]:
    try:
        return parse_range_ms(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--targets",
        help=f"comma list from: {', '.join(TARGETS)} (default: all; "
        "litellm only when its virtualenv is found)",
    )
    p.add_argument("--workloads", help=f"comma list from: {', '.join(WORKLOADS)} (default: all)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="1 s runs, 1 s warm-up, c=16 only, no LiteLLM, no metering rounds",
    )
    p.add_argument("--duration", type=float, help="seconds per measured run (default 5)")
    p.add_argument("--warmup", type=float, help="seconds of warm-up per workload (default 2)")
    p.add_argument(
        "--concs",
        type=_ints,
        help="concurrencies for chat, embeddings, stream, chat-latency (default 1,16,64)",
    )
    p.add_argument("--paced-concs", type=_ints, help="concurrencies for the paced stream (default 1,16)")
    p.add_argument("--pace-ms", type=float, default=5.0, help="ms between chunks of a paced stream (5)")
    p.add_argument(
        "--latency-ms",
        type=_range,
        default=(50.0, 150.0),
        help="LOW-HIGH: the slow mock (chat-latency) answers each call after a uniform random delay (50-150)",
    )
    p.add_argument(
        "--metering-rounds",
        type=int,
        help="after the schedule, N interleaved rounds of chat and stream at c=16 on tollway, "
        "tollway-nometer and tollway-scaleout side by side; the metering checks use the median "
        "of the rounds' paired overheads (default 7; --quick: 0 = off)",
    )
    p.add_argument(
        "--litellm-venv", type=Path, help=f"LiteLLM virtualenv (default {DEFAULT_LITELLM} if there)"
    )
    p.add_argument("--tollway-bin", default=str(Path(sys.executable).with_name("tollway")))
    p.add_argument(
        "--pg-admin-url",
        default=os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379"))
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    p.add_argument("--out", type=Path, help="results folder (default bench/results/<timestamp>)")
    args = p.parse_args(argv)
    quick = args.quick
    args.duration = args.duration or (1.0 if quick else 5.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if quick else 2.0)
    args.concs = args.concs or ((16,) if quick else (1, 16, 64))
    args.paced_concs = args.paced_concs or ((16,) if quick else (1, 16))
    if args.metering_rounds is None:
        args.metering_rounds = 0 if quick else 7  # the VM moves 20-60 % between runs: a steadier median
    if args.workloads:
        unknown = set(args.workloads.split(",")) - set(WORKLOADS)
        if unknown:
            p.error(f"unknown workload(s) {sorted(unknown)}; choose from {', '.join(WORKLOADS)}")
    return args


def choose_targets(args: argparse.Namespace) -> tuple[list[str], Path | None]:
    venv = args.litellm_venv or (DEFAULT_LITELLM if (DEFAULT_LITELLM / "bin" / "litellm").exists() else None)
    if args.targets:
        names = [t.strip() for t in args.targets.split(",") if t.strip()]
        unknown = [t for t in names if t not in TARGETS]
        if unknown:
            raise SystemExit(f"unknown target(s) {unknown}; choose from {', '.join(TARGETS)}")
    else:
        names = [t for t in TARGETS if t != "litellm" or (venv is not None and not args.quick)]
    if "direct" not in names:
        names.insert(0, "direct")  # added latency needs it
    return names, venv


def make_env(args: argparse.Namespace, run_dir: Path, venv: Path | None) -> BenchEnv:
    cores = cpu_count()
    pin = not args.no_pin and cores >= 2 and shutil.which("taskset") is not None
    if pin:
        os.sched_setaffinity(0, {0})  # this orchestrator stays off the gateway's core
    return BenchEnv(
        run_dir=run_dir,
        mock_url="",
        paced_url="",
        slow_url="",
        python=sys.executable,
        tollway_bin=args.tollway_bin,
        litellm_venv=venv,
        pin=pin,
        cores=cores,
        pg_admin_url=args.pg_admin_url,
        redis_url=args.redis_url,
    )


def describe_placement(env: BenchEnv) -> str:
    if not env.pin:
        return f"not pinned ({env.cores} cores)"
    return (
        f"{env.cores} cores; gateways pinned to CPU 1 (taskset -c 1), load generator, mocks and "
        f"orchestrator on CPU 0, and PostgreSQL + Redis while a scale-out target runs; tollway-w2 "
        f"unpinned (CPUs 0-{env.cores - 1})"
    )


def run(args: argparse.Namespace) -> Path:
    names, venv = choose_targets(args)
    run_dir = (args.out or ROOT / "results" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    ensure_wrk()
    host = report.machine()  # before this process pins itself to CPU 0
    env = make_env(args, run_dir, venv)
    meta: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": shlex.join(["python", "-m", "bench", *sys.argv[1:]]),
        "targets": names,
        "duration": args.duration,
        "warmup": args.warmup,
        "pace_ms": args.pace_ms,
        "latency_ms": list(args.latency_ms),
        "metering_rounds": args.metering_rounds,
        "machine": host,
        "cores": env.cores,
        "placement": describe_placement(env),
    }
    recorder = Recorder(run_dir / "results.jsonl")
    recorder({"kind": "meta", **meta})
    selected = workloads(args.concs, args.paced_concs)
    if args.workloads:
        wanted = set(args.workloads.split(","))
        selected = [w for w in selected if w.name in wanted]
    mocks = start_mocks(env, args)
    log(f"results in {run_dir}; targets {', '.join(names)}; {describe_placement(env)}")
    try:
        schedule = Schedule(env, selected, args.duration, args.warmup, [m.pid for m in mocks], recorder)
        for name in names:
            schedule.run_target(name)
        rounds.run_rounds(schedule, names, args.metering_rounds)
    finally:
        for mock in mocks:
            stop_process(mock)
    meta["versions"] = report.versions(
        {
            "litellm": version_of(env, "litellm") if "litellm" in names else None,
            "postgresql": backing.postgres_version(args.pg_admin_url) if _scaleout(names) else None,
            "redis-server": backing.redis_version(args.redis_url) if _scaleout(names) else None,
        }
    )
    (run_dir / "report.md").write_text(report.render(recorder.records, meta))
    return run_dir


def start_mocks(env: BenchEnv, args: argparse.Namespace) -> list[subprocess.Popen[bytes]]:
    """Three copies of the mock: back to back, paced streams, and slow (a random delay per call)."""
    ports = free_port(), free_port(), free_port()
    mocks: list[subprocess.Popen[bytes]] = []
    try:
        mocks.append(start_mock(env, ports[0], 0))
        mocks.append(start_mock(env, ports[1], args.pace_ms))
        mocks.append(start_mock(env, ports[2], 0, latency_ms=args.latency_ms))
    except BaseException:
        for mock in mocks:
            stop_process(mock)
        raise
    env.mock_url, env.paced_url, env.slow_url = (f"http://127.0.0.1:{port}" for port in ports)
    return mocks


def _scaleout(names: list[str]) -> bool:
    return any(n in ("tollway-scaleout", "tollway-w2") for n in names)


def main(argv: list[str] | None = None) -> None:
    run_dir = run(parse_args(argv))
    log(f"report: {run_dir / 'report.md'}")


if __name__ == "__main__":
    main()
