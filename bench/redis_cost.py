"""What one scale-out call costs Redis, in instructions: the admit and settle scripts and the drain of
its ledger row, counted by valgrind inside a private redis-server.

    .venv/bin/python -m bench.redis_cost            # ~30 s; needs valgrind, redis-server and PostgreSQL

Redis is the one process every replica shares, so its cost per call bounds the whole cluster's
throughput. Its CPU time moves by ±10 % from run to run on a shared VM; the instruction count of the
same scripts repeats to within ~0.2 %. The calls are the full bench's chat calls as metering sees them:
a key with RPM and TPM limits, a funded project with credit enforced. A fake clock puts them 1 ms apart
and, before the counted calls, moves a window on, so that every counted admit also prunes the entries
that have just left its windows, as in a gateway that has been busy for over a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import subprocess
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from redis.asyncio import Redis

from bench.metering_micro import postgres, seed
from bench.metering_path import callgrind_total
from bench.targets import free_port
from tollway.metering import Admission, RedisMeter
from tollway.types import CallRecord, Limits, Usage

LIMITS = Limits(rpm=10_000_000, tpm=1_000_000_000)  # the full bench's key
BATCH = 16  # calls in flight together, sharing one millisecond each


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def calls(meter: RedisMeter, clock: Clock, ids: itertools.count[int], n: int) -> None:
    for _ in range(0, n, BATCH):
        admissions = [admission(f"req_bench{next(ids):010d}") for _ in range(BATCH)]
        tickets = await asyncio.gather(*(meter.admit(a) for a in admissions))
        for ticket in tickets:
            await meter.settle(ticket, record(ticket.admission))
        clock.now += BATCH / 1000
    await meter.flush()  # settled and drained: the rows' whole cost is in the count


def admission(request_id: str) -> Admission:
    return Admission(request_id, "bench-key", "bench", "upstream:gpt-4o-mini", LIMITS, Limits(), Limits(),
                     100, 10_000_000, True, None)  # fmt: skip


def record(admitted: Admission) -> CallRecord:
    return CallRecord(admitted.request_id, "openai", "chat", time.time(), "bench", "bench-key", "gpt-4o-mini",
                      admitted.model_id, "upstream", Usage(input_tokens=30, output_tokens=40), 5_000_000,
                      1.5, None, 200, None, False)  # fmt: skip


async def measure(port: int, pid: int, pg_url: str, warm: int, counted: int) -> None:
    client = Redis(port=port)
    for _ in range(300):  # valgrind takes a few seconds to start the server
        try:
            await client.ping()
            break
        except OSError:
            await asyncio.sleep(0.1)
    clock, ids = Clock(), itertools.count()
    async with postgres(pg_url) as factory:
        await seed(factory)
        meter = RedisMeter(client, factory, prefix="bench:", clock=clock, flush_interval=0.05)
        await meter.start()
        await meter.grant("bench", Decimal(1_000_000), None)
        await calls(meter, clock, ids, warm)
        clock.now += 60 - warm / 1000  # the warm calls now leave the window as the counted ones come
        await callgrind_control("-z", pid)  # zero the counts
        await calls(meter, clock, ids, counted)
        await callgrind_control("-d", pid)  # dump them
        await meter.aclose()
    await client.aclose()


async def callgrind_control(flag: str, pid: int) -> None:
    process = await asyncio.create_subprocess_exec(
        "callgrind_control", flag, str(pid), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if await process.wait() != 0:
        raise RuntimeError(f"callgrind_control {flag} {pid} failed")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--warm", type=int, default=3_000, help="calls before the count (default 3,000)")
    parser.add_argument("--calls", type=int, default=2_000, help="calls counted (default 2,000)")
    args = parser.parse_args()
    server = shutil.which("redis-server")
    if server is None or shutil.which("valgrind") is None:
        raise SystemExit("needs redis-server and valgrind on PATH")
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "redis.callgrind"
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
                   server, "--port", str(port), "--save", "", "--appendonly", "no"]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            asyncio.run(measure(port, process.pid, args.pg, args.warm, args.calls))
        finally:
            process.terminate()
            process.wait()
        total = callgrind_total(Path(f"{out}.1"))
    if total is None:
        raise SystemExit("callgrind wrote no count")
    print(f"redis-server instructions per call (admit + settle + drain): {total / args.calls:,.0f}")


if __name__ == "__main__":
    main()
