"""The metering path's own cost, in process: chat calls through `pipeline.Metering` (admit, then settle) on
a real embedded meter (a SQLite file; the ledger flushed every 350 calls, the batch a busy gateway wrote
every 0.1 s, the interval until 2026-12-07: at today's 0.5 s, batches are ~5x larger), against the same
calls with metering off (cost and metrics only).

    .venv/bin/python -m bench.metering_path               # µs of CPU per call, on and off, median of rounds
    .venv/bin/python -m bench.metering_path --callgrind   # instructions per call under valgrind

Judge a change to this path by `--callgrind` on a noisy machine: the same code gives the same count to
within ~2 % whatever else the machine does, where CPU time moves by 20 % between runs. The
count is the difference of two runs (700 and 3,500 calls), so start-up does not enter it. It leaves out
the HTTP side of metering (the rate-limit headers written to the response) and cache misses, which the
full bench (`python -m bench`) sees.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import orjson
import uvloop

from bench.metering_micro import seed, sqlite
from tollway.catalog.catalog import CatalogModel
from tollway.metering import MemoryMeter
from tollway.observability import Metrics
from tollway.pipeline.call import Call
from tollway.pipeline.metering import Metering
from tollway.types import Limits, ModelRequest, Operation, Pricing, Principal, Surface, Usage

BATCH = 350  # calls per ledger flush
FUNDS = Decimal(1_000_000)
MODEL = CatalogModel(
    id="upstream:gpt-4o-mini",
    provider="upstream",
    upstream_model="gpt-4o-mini",
    capabilities=frozenset({"chat"}),
    pricing=Pricing(input_per_mtok=Decimal("0.15"), output_per_mtok=Decimal("0.6")),
)
# As the full bench sets up its key: RPM and TPM limits, a funded project with credit enforced.
PRINCIPAL = Principal(
    key_id="key_bench",
    key_prefix="tw_bench",
    project_id="bench",  # metering_micro.seed's project
    project_name="bench",
    scopes=frozenset({"inference"}),
    key_limits=Limits(rpm=10_000_000, tpm=1_000_000_000),
    credit_enforced=True,
)
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 64}


class Driver:
    """One meter and its database; `run` pushes calls through a `Metering` with or without it."""

    def __init__(self, meter: MemoryMeter) -> None:
        self.meter = meter
        self.raw = orjson.dumps(BODY)
        # As the gateway makes them (`api.middleware.new_request_id`): one random prefix, then a counter.
        # A fresh random prefix per call scatters the ledger's primary-key inserts over the index, a cost
        # the gateway never pays that grows with the table (measured: 28-42 µs a call, against 18-22).
        prefix = f"req_{uuid.uuid4().hex[:16]}"
        self.ids = (f"{prefix}{n:08x}" for n in itertools.count())

    async def run(self, metered: bool, calls: int) -> float:
        """CPU seconds per call (every thread of the process: the ledger's included)."""
        metering = Metering(self.meter if metered else None, Metrics())
        started = time.process_time()
        for n in range(calls):
            call = Call(next(self.ids), Surface.OPENAI, Operation.CHAT, PRINCIPAL)
            call.model_requested = "gpt-4o-mini"
            call.served_by(MODEL.target())
            await metering.admit(call, MODEL, ModelRequest(body=BODY, raw=self.raw))
            await metering.settle(call, Usage(input_tokens=14, output_tokens=20))
            if n % BATCH == BATCH - 1:
                await self.meter.flush()
        await self.meter.flush()
        return (time.process_time() - started) / calls


async def with_driver(work: str, calls: int, rounds: int) -> None:
    async with sqlite() as sessions:  # the gateway's engine on a temporary file, as metering_micro's
        await seed(sessions)
        meter = MemoryMeter(sessions, flush_interval=3600)  # flushed by the driver, every BATCH calls
        await meter.start()
        await meter.grant(PRINCIPAL.project_id, FUNDS, None)
        driver = Driver(meter)
        try:
            if work in ("on", "off"):  # one run, for callgrind to count
                await driver.run(work == "on", calls)
            else:
                await timed(driver, calls, rounds)
            # Evidence that the metered calls were charged (a path that metered nothing would be cheap).
            spent = FUNDS - await meter.balance(PRINCIPAL.project_id)
            print(f"charged ${spent} to the bench project")
        finally:
            await meter.aclose()


async def timed(driver: Driver, calls: int, rounds: int) -> None:
    await driver.run(True, calls // 4)  # warm-up: imports, caches, the first pages of the ledger
    await driver.run(False, calls // 4)
    on, off = [], []
    for _ in range(rounds):
        on.append(await driver.run(True, calls) * 1e6)
        off.append(await driver.run(False, calls) * 1e6)
    print(f"{calls} calls × {rounds} rounds; CPU µs per call, median (min-max):")
    for name, values in (("metering on", on), ("metering off", off)):
        print(f"  {name:13s} {statistics.median(values):7.1f}  ({min(values):.1f}-{max(values):.1f})")
    extra = [a - b for a, b in zip(on, off, strict=True)]
    print(f"  {'metering path':13s} {statistics.median(extra):7.1f}  (paired rounds)")


def instructions(metered: bool, calls: int) -> int:
    """Instructions valgrind counts for one run of `calls` calls (all threads)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
        command += ["-m", "bench.metering_path", "--work", "on" if metered else "off", "--calls", str(calls)]
        subprocess.run(command, check=True, capture_output=True)
        total = callgrind_total(out)
    if total is None:
        raise RuntimeError("callgrind wrote no totals")
    return total


def callgrind_total(dump: Path) -> int | None:
    """The instruction total a callgrind dump file states (None while it states none)."""
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return None


def counted(short: int, long: int) -> None:
    per_call = {}
    for metered in (True, False):
        per_call[metered] = (instructions(metered, long) - instructions(metered, short)) / (long - short)
    print(f"instructions per call ({long} - {short} calls, callgrind):")
    print(f"  metering on   {per_call[True]:>10,.0f}")
    print(f"  metering off  {per_call[False]:>10,.0f}")
    print(f"  metering path {per_call[True] - per_call[False]:>10,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--callgrind", action="store_true", help="count instructions under valgrind (~2 min)")
    parser.add_argument("--calls", type=int, default=20_000, help="calls per timed round (default 20,000)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds, on and off in turn (default 5)")
    parser.add_argument("--work", choices=("timed", "on", "off"), default="timed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.callgrind:
        counted(700, 3_500)
        return
    uvloop.run(with_driver(args.work, args.calls, args.rounds))


if __name__ == "__main__":
    main()
