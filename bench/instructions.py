"""What metering costs inside the running gateway, in instructions: the full bench's metering check without
this VM's noise.

    .venv/bin/python -m bench.instructions                  # chat and stream, 1,500 calls each (~8 min)
    .venv/bin/python -m bench.instructions --workloads chat --calls 800
    .venv/bin/python -m bench.instructions --targets tollway-scaleout,tollway-nometer
    .venv/bin/python -m bench.instructions --targets floor     # the bare proxy's own count, beside it

The mock upstream is started, then `tollway` and `tollway-nometer`, set up exactly as the full bench sets
them up (key with RPM and TPM limits, funded project with credit enforced), each under valgrind's
callgrind. Per workload, after a warm-up, the counters are zeroed (`callgrind_control -z`), a fixed
number of calls is sent at concurrency 16 and, once the ledger has written them, the counters are dumped:
instructions per call, all threads of the gateway. Valgrind runs the gateway ~50x slower, so the ledger
is flushed every 5 s, to keep the batches the few hundred rows a busy gateway wrote at the 0.1 s interval
of the time (at today's 0.5 s they are ~5x larger, and a row a little cheaper). Kernel time (syscalls)
and cache misses are not counted; the full bench (`python -m bench`) sees them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

from bench.metering_path import callgrind_total
from bench.runner import Workload, workloads
from bench.targets import BenchEnv, Running, free_port, start_mock, start_target

TARGETS = ("tollway", "tollway-scaleout", "tollway-nometer", "floor")
BASELINE = "tollway-nometer"  # the metering-off side of each difference
CONCURRENCY = 16
FLUSH_SECONDS = 5.0  # ~350 rows a flush at the speed callgrind lets the gateway run
DRAIN_SECONDS = FLUSH_SECONDS * 2 + 1  # scale-out: a row reaches SQL within ~1.5 flushes (the drainer's pace)


class CallgrindEnv(BenchEnv):
    """Targets start under callgrind, unpinned (instruction counts do not depend on placement)."""

    def gateway_prefix(self, target: str) -> list[str]:
        out = self.run_dir / f"{target}.callgrind.%p"
        return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no"]

    def load_prefix(self) -> list[str]:
        return []


async def send(base: str, key: str, body: dict[str, object], calls: int) -> None:
    """`calls` calls at CONCURRENCY, each read to the end; any non-200 aborts the measurement."""
    payload = orjson.dumps(body)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    remaining = iter(range(calls))

    async def worker(session: aiohttp.ClientSession) -> None:
        for _ in remaining:
            async with session.post(base + "/v1/chat/completions", data=payload, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}: {(await response.text())[:200]}")

    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))


def control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True, timeout=120)


def dumped_total(run_dir: Path, target: str, pid: int, before: set[Path]) -> int:
    """Instructions in the dump `callgrind_control -d` just wrote for `pid`."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = set(run_dir.glob(f"{target}.callgrind.{pid}*")) - before
        for path in new:
            total = callgrind_total(path)
            if total is not None:
                return total
        time.sleep(0.5)
    raise RuntimeError(f"callgrind wrote no dump for {target}")


def measure(running: Running, env: BenchEnv, body: dict[str, object], calls: int, warmup: int) -> float:
    """Instructions per call of `body` on a gateway running under callgrind."""
    assert running.pid is not None
    asyncio.run(send(running.base, running.key, body, warmup))
    time.sleep(DRAIN_SECONDS)  # the warm-up's rows written: the count starts with nothing pending
    control("-z", running.pid)
    asyncio.run(send(running.base, running.key, body, calls))
    time.sleep(DRAIN_SECONDS)  # and ends once the measured calls' rows are written
    before = set(env.run_dir.glob(f"{running.name}.callgrind.{running.pid}*"))
    control("-d", running.pid)
    return dumped_total(env.run_dir, running.name, running.pid, before) / calls


def count_target(
    name: str, env: BenchEnv, chosen: list[Workload], calls: int, warmup: int
) -> dict[tuple[str, str], float]:
    print(f"{name}: starting under callgrind (~1 min)", flush=True)
    running = start_target(name, env)
    counts = {}
    try:
        for workload in chosen:
            counts[name, workload.name] = measure(running, env, workload.body, calls, warmup)
            print(f"  {workload.name}: {counts[name, workload.name]:,.0f} instructions a call", flush=True)
    finally:
        running.stop()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workloads", default="chat,stream", help="comma list from: chat, stream")
    parser.add_argument(
        "--targets",
        default="tollway,tollway-nometer",
        help=f"comma list from: {', '.join(TARGETS)} (tollway-nometer is the baseline and always runs)",
    )
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="tollway-scaleout: where its own database is created (and dropped)",
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379"))
    parser.add_argument("--calls", type=int, default=1500, help="measured calls per workload (default 1,500)")
    parser.add_argument("--warmup", type=int, default=300, help="calls before counting (default 300)")
    parser.add_argument("--keep", action="store_true", help="keep the dumps, for callgrind_annotate")
    parser.add_argument("--tollway-bin", default=str(Path(sys.executable).with_name("tollway")))
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    chosen = [w for w in workloads((CONCURRENCY,), ()) if w.name in args.workloads.split(",")]
    if not chosen:
        sys.exit("no known workload chosen: use chat and/or stream")
    names = [name for name in TARGETS if name in {*args.targets.split(","), BASELINE}]
    unknown = set(args.targets.split(",")) - set(TARGETS)
    if unknown:
        sys.exit(f"unknown target(s) {', '.join(sorted(unknown))}: choose from {', '.join(TARGETS)}")
    os.environ["TOLLWAY_LEDGER_FLUSH_SECONDS"] = str(FLUSH_SECONDS)
    run_dir = Path(tempfile.mkdtemp(prefix="tollway-instructions-"))
    backing = (args.pg_admin_url, args.redis_url)  # tollway-scaleout's PostgreSQL and Redis
    env = CallgrindEnv(run_dir, "", "", "", sys.executable, args.tollway_bin, None, False, 1, *backing)
    port = free_port()
    mock = start_mock(env, port, 0)
    env.mock_url = env.paced_url = env.slow_url = f"http://127.0.0.1:{port}"
    per_call: dict[tuple[str, str], float] = {}
    try:
        for name in names:
            per_call.update(count_target(name, env, chosen, args.calls, args.warmup))
    finally:
        mock.terminate()
        mock.wait()
        if args.keep:
            print(f"dumps kept in {run_dir} (callgrind_annotate <file>)")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    print(f"\ninstructions per call in the gateway ({args.calls} calls at c={CONCURRENCY}, callgrind):")
    for workload in chosen:
        off = per_call[BASELINE, workload.name]
        for name in names:
            if name == BASELINE:
                continue
            on = per_call[name, workload.name]
            if name == "floor":  # the bare proxy: its own count, nothing to compare it with
                print(f"  {workload.name:7s} {name:17s} {on:>13,.0f}")
                continue
            print(
                f"  {workload.name:7s} {name:17s} on {on:>10,.0f}  off {off:>10,.0f}"
                f"  metering {on - off:>9,.0f}  ({(on - off) / off:+.1%})"
            )


if __name__ == "__main__":
    main()
