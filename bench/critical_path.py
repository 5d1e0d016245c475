"""Where a call's time goes inside each gateway at concurrency 1: before the upstream, the upstream's
round trip, after it. The c=1 added-latency check without the wake-ups that dominate it.

    .venv/bin/python -m bench.critical_path        # floor, tollway, tollway-nometer; chat and stream
    .venv/bin/python -m bench.critical_path --target tollway --target tollway:PYTHONPATH=/tmp/old/src

Each target is started with `bench/critical_path_hook` first on its PYTHONPATH; its `sitecustomize` times
every call at four points of aiohttp's (see that file): request in, upstream request written, upstream
answer in, the answer's last write. The targets take turns, one wrk connection at a time (`--seconds` per
turn, `--rounds` turns each); per target the figure is the median over turns of each turn's median.
*before* + *after* is the gateway's own part of a call's latency: what it computes between the bytes
arriving and the bytes leaving. *upstream* is the hop to the mock and back, which every gateway pays
alike (two wake-ups across the cores). On this VM the end-to-end added p50 at c=1 (~0.35-0.45 ms for the
bare floor) is mostly that hop and the caller's own hop; the gateway's part is the difference between
gateways. Work a gateway does after its last write (the embedded meter's settlement) is not in it, as
it is not in the caller's wait when the caller is a network hop away. A target is a bench target name,
optionally followed by `:VAR=value,...` for its environment, as in `bench.simultaneous`.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench.load import run_wrk
from bench.runner import workloads
from bench.simultaneous import Spec, start
from bench.targets import BenchEnv, Running, free_port, start_mock

HOOK = Path(__file__).resolve().parent / "critical_path_hook"
DEFAULT_TARGETS = ("floor", "tollway", "tollway-nometer")


def launch(spec: Spec, env: BenchEnv, index: int) -> Running:
    """The target with the hook loaded: its PYTHONPATH starts with the hook's folder."""
    extra = dict(spec.env)
    extra["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HOOK), extra.get("PYTHONPATH")]))
    extra["TOLLWAY_BENCH_CRITICAL_PATH"] = str(env.run_dir / f"path-{index}")
    return start(Spec(spec.name, extra), env, f"path-{index}")


def collect(running: Running, env: BenchEnv, index: int) -> list[tuple[int, int, int]]:
    """The calls timed since the last collection (SIGUSR2 makes the target write and forget them)."""
    assert running.pid is not None
    path = env.run_dir / f"path-{index}.{running.pid}"
    path.unlink(missing_ok=True)
    os.kill(running.pid, signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{running.name} wrote no timings; is the hook loaded?")
        time.sleep(0.05)
    text = path.read_text()
    return [tuple(int(v) for v in line.split()) for line in text.splitlines() if line]  # type: ignore[misc]


def measure(specs: list[Spec], env: BenchEnv, args: argparse.Namespace) -> None:
    running = [launch(spec, env, index) for index, spec in enumerate(specs)]
    try:
        for workload in (w for w in workloads((1,), ()) if w.name in args.workloads.split(",")):
            body = env.run_dir / f"{workload.name}.json"
            body.write_bytes(orjson.dumps(workload.body))
            medians: list[list[tuple[float, ...]]] = [[] for _ in specs]
            p50s: list[list[float]] = [[] for _ in specs]
            for index, target in enumerate(running):  # warm-up
                run_wrk(env.load_prefix(), target.base, workload.path, body, target.key, 1, 1)
                collect(target, env, index)
            for _ in range(args.rounds):
                for index, target in enumerate(running):
                    result = run_wrk(
                        env.load_prefix(), target.base, workload.path, body, target.key, 1, args.seconds
                    )
                    if result["errors"]:
                        raise RuntimeError(f"{target.name}: errors in a turn: {result}")
                    calls = collect(target, env, index)
                    medians[index].append(tuple(statistics.median(c[i] for c in calls) for i in range(3)))
                    p50s[index].append(result["p50_ms"])
            report(workload.name, specs, medians, p50s)
    finally:
        for target in running:
            target.stop()


def report(
    workload: str, specs: list[Spec], medians: list[list[tuple[float, ...]]], p50s: list[list[float]]
) -> None:
    print(f"\n{workload} at c=1, µs (median over turns of each turn's median):")
    print(f"  {'target':42s} {'before':>7s} {'upstream':>9s} {'after':>7s} {'own':>7s}   wrk p50")
    for index, spec in enumerate(specs):
        before, upstream, after = (statistics.median(m[i] for m in medians[index]) / 1000 for i in range(3))
        p50 = statistics.median(p50s[index])
        print(
            f"  {spec!s:42s} {before:7.1f} {upstream:9.1f} {after:7.1f} {before + after:7.1f}   {p50:.3f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--target",
        action="append",
        dest="targets",
        help="a target, repeated for several (default: floor, tollway, tollway-nometer)",
    )
    parser.add_argument("--workloads", default="chat,stream", help="comma list: chat, embeddings, stream")
    parser.add_argument("--rounds", type=int, default=5, help="turns per target (default 5)")
    parser.add_argument("--seconds", type=float, default=2, help="seconds per turn (default 2)")
    args = parser.parse_args()
    specs = [Spec.parse(text) for text in args.targets or DEFAULT_TARGETS]
    run_dir = Path(tempfile.mkdtemp(prefix="tollway-critical-path-"))
    tollway_bin = str(Path(sys.executable).with_name("tollway"))
    pg, redis = "postgresql://postgres@127.0.0.1:5432/postgres", "redis://127.0.0.1:6379"
    env = BenchEnv(run_dir, "", "", "", sys.executable, tollway_bin, None, True, 2, pg, redis)
    port = free_port()
    mock = start_mock(env, port, 0)
    env.mock_url = env.paced_url = env.slow_url = f"http://127.0.0.1:{port}"
    try:
        measure(specs, env, args)
    finally:
        mock.terminate()
        mock.wait()


if __name__ == "__main__":
    main()
