"""Two gateways measured at the same time: what a difference between them costs, without the VM's noise.

    .venv/bin/python -m bench.simultaneous                     # metering: tollway vs tollway-nometer, chat
    .venv/bin/python -m bench.simultaneous --workloads chat,stream
    .venv/bin/python -m bench.simultaneous --a tollway:TOLLWAY_LEDGER_FLUSH_SECONDS=1 --b tollway

Both targets are pinned to CPU 1 and loaded at once, each by its own wrk on CPU 0 (`--conc` connections
each), in rounds; each round reads both processes' CPU time over the same seconds, so whatever slows the
core then (this VM's neighbours) slows both alike. Per round: A's CPU per call over B's, minus 1. A pair
of processes keeps a difference of its own from start to end (hash seeds, memory layout: ±1.5 % between
two identical gateways), so the pair is started several times (`--pairs`), the order alternating, and the
figure is the median of all rounds. On a spell where the full bench's sequential rounds of the same two
gateways ranged from -25 % to +34 %, the rounds of one pair stayed within ±1.5 % of their median, and the
metering figure came out at +16.4 to +17.8 % in four runs. Runs of the same comparison still disagree by
a few percent: two changes measured -2.7 % and -1.6 % each, and -0.2 to -0.4 % together, in runs minutes
apart. Trust a difference of 4 % or more, or repeat. Two processes on one core make each call dearer than
it is alone (they switch and share the cache): compare the ratio, not the µs. A target is a bench target
name, optionally followed by `:VAR=value,...` for its environment (a setting, or `PYTHONPATH` to try
another source tree).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.load import run_wrk
from bench.measure import tree_cpu_seconds
from bench.runner import Workload, workloads
from bench.targets import TARGETS, BenchEnv, Running, free_port, start_mock, start_target

_STARTS = itertools.count(1)


@dataclass(frozen=True)
class Spec:
    """A target and the environment it starts with."""

    name: str
    env: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> Spec:
        name, _, extra = text.partition(":")
        if name not in TARGETS or name == "tollway-w2":
            raise argparse.ArgumentTypeError(f"{name!r}: choose a single-process target")
        pairs = [item.split("=", 1) for item in extra.split(",") if item]
        if any(len(pair) != 2 for pair in pairs):
            raise argparse.ArgumentTypeError(f"{text!r}: write the environment as VAR=value,VAR=value")
        return cls(name, dict(pairs))  # type: ignore[arg-type]

    def __str__(self) -> str:
        extra = ",".join(f"{key}={value}" for key, value in self.env.items())
        return f"{self.name}:{extra}" if extra else self.name


def start(spec: Spec, env: BenchEnv, instance: str) -> Running:
    saved = dict(os.environ)
    os.environ.update(spec.env)  # the target's process inherits it
    try:
        return start_target(spec.name, env, instance)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def one_round(env: BenchEnv, pair: list[Running], workload: Workload, body: Path, args: Any) -> float:
    """A's CPU per call over B's, minus 1, both loaded over the same seconds."""
    results: dict[int, dict[str, Any]] = {}

    def load(index: int) -> None:
        running = pair[index]
        results[index] = run_wrk(
            env.load_prefix(), running.base, workload.path, body, running.key, args.conc, args.seconds
        )

    before = [tree_cpu_seconds(running.pid) for running in pair]
    threads = [threading.Thread(target=load, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = [tree_cpu_seconds(running.pid) for running in pair]
    if any(results[index]["errors"] or not results[index]["ok"] for index in range(2)):
        raise RuntimeError(f"errors in a round: {results}")
    per_call = [(after[i] - before[i]) / results[i]["ok"] * 1e6 for i in range(2)]
    ratio = per_call[0] / per_call[1] - 1
    print(f"    A {per_call[0]:6.0f} µs/call  B {per_call[1]:6.0f} µs/call  A/B {ratio:+.1%}", flush=True)
    return ratio


def compare(env: BenchEnv, first: Spec, second: Spec, workload: Workload, args: Any) -> list[float]:
    """A/B - 1 of each round, with `first` started first (A is `first`)."""
    body = env.run_dir / f"{workload.name}.json"
    body.write_bytes(orjson.dumps(workload.body))
    tag = f"{workload.name}-{next(_STARTS)}"  # each start gets a data directory of its own
    pair = [start(first, env, f"{tag}-a"), start(second, env, f"{tag}-b")]
    try:
        for running in pair:  # warm-up
            run_wrk(env.load_prefix(), running.base, workload.path, body, running.key, args.conc, 2)
        return [one_round(env, pair, workload, body, args) for _ in range(args.rounds)]
    finally:
        for running in pair:
            running.stop()


def measure(env: BenchEnv, workload: Workload, args: Any) -> list[float]:
    """A/B - 1 of every round of every pair of processes, the order of starting alternating."""
    ratios: list[float] = []
    for index in range(args.pairs):
        if index % 2 == 0:
            print(f"  pair {index + 1}: A started first", flush=True)
            ratios += compare(env, args.a, args.b, workload, args)
        else:
            print(f"  pair {index + 1}: B started first", flush=True)
            ratios += [1 / (1 + ratio) - 1 for ratio in compare(env, args.b, args.a, workload, args)]
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--a", type=Spec.parse, default=Spec("tollway", {}), help="default: tollway")
    parser.add_argument(
        "--b", type=Spec.parse, default=Spec("tollway-nometer", {}), help="default: tollway-nometer"
    )
    parser.add_argument("--workloads", default="chat", help="comma list from: chat, embeddings, stream")
    parser.add_argument("--pairs", type=int, default=4, help="pairs of processes started (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per pair (default 3)")
    parser.add_argument("--seconds", type=float, default=4, help="seconds per round (default 4)")
    parser.add_argument("--conc", type=int, default=8, help="connections per target (default 8)")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    args = parser.parse_args()
    names = args.workloads.split(",")
    chosen = [
        w
        for w in workloads((args.conc,), ())
        if w.name in names and w.name in ("chat", "embeddings", "stream")
    ]
    if not chosen:
        sys.exit("choose workloads from: chat, embeddings, stream")
    run_dir = Path(tempfile.mkdtemp(prefix="tollway-simultaneous-"))
    tollway_bin = str(Path(sys.executable).with_name("tollway"))
    env = BenchEnv(
        run_dir, "", "", "", sys.executable, tollway_bin, None, True, 2, args.pg_admin_url, args.redis_url
    )
    port = free_port()
    mock = start_mock(env, port, 0)
    env.mock_url = env.paced_url = env.slow_url = f"http://127.0.0.1:{port}"
    try:
        for workload in chosen:
            print(f"{workload.name}: A = {args.a}, B = {args.b}", flush=True)
            ratios = measure(env, workload, args)
            print(
                f"  {workload.name}: A/B - 1 = {statistics.median(ratios):+.1%}, the median of "
                f"{len(ratios)} rounds over {args.pairs} pairs of processes "
                f"(from {min(ratios):+.1%} to {max(ratios):+.1%})"
            )
    finally:
        mock.terminate()
        mock.wait()


if __name__ == "__main__":
    main()
