"""Load generators: wrk (closed loop, one thread) and an aiohttp client for paced streams.

`run_wrk` and `run_stream_client` run the generator as a child process (pinned by the caller's
prefix) and return its RESULT record. The stream client is this module's `main`:

    python -m bench.load --url URL --body FILE --key KEY --conc 16 --duration 5

It checks every stream (status 200, 20 content events, a usage event when asked for, `[DONE]`) and
records TTFB (first `data:` event) and the time to `[DONE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

LUA_SCRIPT = Path(__file__).with_name("post.lua")
EXPECTED_EVENTS = 20  # content chunks from bench/upstream.py
# A gateway may re-chunk the tail (LiteLLM sends usage in a chunk of its own with a choices entry), so
# a stream passes with 20 to 22 events before `[DONE]`.
EVENTS_OK = range(EXPECTED_EVENTS, EXPECTED_EVENTS + 3)


def ensure_wrk() -> str:
    """The wrk binary, installed from Debian when missing (we run as root in the bench box)."""
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return found


def _result_line(output: str, what: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    raise RuntimeError(f"{what} printed no RESULT line:\n{output[-2000:]}")


def run_wrk(
    prefix: list[str], url: str, path: str, body: Path, key: str, conc: int, seconds: float
) -> dict[str, Any]:
    env = dict(os.environ, BENCH_BODY=str(body), BENCH_PATH=path, BENCH_KEY=key)
    duration = f"{max(1, round(seconds))}s"
    cmd = [*prefix, ensure_wrk(), "-t1", f"-c{conc}", f"-d{duration}", "--timeout", "10s"]
    cmd += ["-s", str(LUA_SCRIPT), url]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    result = _result_line(done.stdout + done.stderr, "wrk")
    result["errors"] = sum(v for k, v in result.items() if k.startswith("err_"))
    result["ok"] = result["requests"] - result["err_status"]
    if not result["requests"]:  # wrk reports 0 for percentiles it has no samples for
        result.update({k: None for k in result if k.endswith("_ms")})
    return result


def run_stream_client(
    prefix: list[str], python: str, url: str, body: Path, key: str, conc: int, seconds: float
) -> dict[str, Any]:
    cmd = [*prefix, python, "-m", "bench.load", "--url", url, "--body", str(body), "--key", key]
    cmd += ["--conc", str(conc), "--duration", str(seconds)]
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=seconds + 60)
    return _result_line(done.stdout + done.stderr, "stream client")


def verify(url: str, body: bytes, key: str, stream: bool) -> str | None:
    """One request; None when the answer has the right shape, else what was wrong."""
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = response.read()
    except OSError as exc:
        detail = exc.read()[:300] if hasattr(exc, "read") else b""
        return f"{exc} {detail!r}"
    if not stream:
        data = json.loads(payload)
        # A chat completion has choices, an embedding list has data; both carry usage.
        expected = "data" if url.endswith("/embeddings") else "choices"
        ok = isinstance(data, dict) and data.get(expected) and "usage" in data
        return None if ok else f"bad body {payload[:200]!r}"
    events = [line for line in payload.split(b"\n") if line.startswith(b"data:")]
    if not events or not events[-1].startswith(b"data: [DONE]") or len(events) - 1 not in EVENTS_OK:
        return f"stream had {len(events)} events, last {events[-1][:60] if events else b''!r}"
    return None


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[index] * 1000, 3)


class StreamStats:
    def __init__(self) -> None:
        self.ttfb: list[float] = []
        self.total: list[float] = []
        self.errors: dict[str, int] = {}

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def _one_stream(session: Any, args: argparse.Namespace, payload: bytes, stats: StreamStats) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {args.key}"}
    start = time.perf_counter()
    first: float | None = None
    content = done = 0
    async with session.post(args.url, data=payload, headers=headers) as response:
        if response.status != 200:
            await response.read()
            stats.error(f"status_{response.status}")
            return
        async for line in response.content:
            if not line.startswith(b"data:"):
                continue
            first = first or time.perf_counter()
            if line.startswith(b"data: [DONE]"):
                done = 1
            else:
                content += 1
    if not done or content not in EVENTS_OK or first is None:
        stats.error("incomplete_stream")
        return
    stats.ttfb.append(first - start)
    stats.total.append(time.perf_counter() - start)


async def _stream_load(args: argparse.Namespace, payload: bytes) -> dict[str, Any]:
    import aiohttp

    stats = StreamStats()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        end = time.perf_counter() + args.duration

        async def worker() -> None:
            while time.perf_counter() < end:
                try:
                    await _one_stream(session, args, payload, stats)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    stats.error(type(exc).__name__)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.conc)))
        elapsed = time.perf_counter() - started
    return {
        "requests": len(stats.total) + sum(stats.errors.values()),
        "ok": len(stats.total),
        "secs": round(elapsed, 3),
        "rps": round(len(stats.total) / elapsed, 1),
        "p50_ms": percentile(stats.total, 50),
        "p90_ms": percentile(stats.total, 90),
        "p99_ms": percentile(stats.total, 99),
        "ttfb_p50_ms": percentile(stats.ttfb, 50),
        "ttfb_p99_ms": percentile(stats.ttfb, 99),
        "errors": sum(stats.errors.values()),
        "error_kinds": stats.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="closed-loop SSE stream client")
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--key", default="none")
    parser.add_argument("--conc", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    import uvloop

    result = uvloop.run(_stream_load(args, Path(args.body).read_bytes()))
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
