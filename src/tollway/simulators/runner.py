"""Ways to run a simulator: an async context manager, a background thread, and the command line.

The command line dispatches on ``KINDS`` (kind -> how to add its arguments, how to serve it); adding a
simulator is one entry there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from tollway.simulators import anthropic_sim
from tollway.simulators.openai_control import SimOptions
from tollway.simulators.openai_sim import OPENAI_SIM_KEY, OpenAISim, create_openai_sim_app

_BACKLOG = 2048  # the benchmark opens many connections at once


class RunningServer(Protocol):
    """What every ``serve_*_sim`` context manager yields: where the simulator listens."""

    @property
    def url(self) -> str: ...

    @property
    def port(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RunningOpenAISim:
    host: str
    port: int
    sim: OpenAISim

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """What an OpenAI client takes as ``base_url``."""
        return f"{self.base_url}/v1"


@contextlib.asynccontextmanager
async def serve_app(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Serve ``app`` until the block exits; yields the bound port (useful with ``port=0``)."""
    # A short shutdown: tests stop simulators with streams or paced requests still open.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=_BACKLOG)
        await site.start()
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def serve_openai_sim(
    host: str = "127.0.0.1", port: int = 0, **options: Any
) -> AsyncIterator[RunningOpenAISim]:
    """Run the OpenAI simulator; ``options`` are :class:`SimOptions` fields (``api_key``, ...)."""
    app = create_openai_sim_app(SimOptions.build(**options))
    async with serve_app(app, host, port) as bound:
        yield RunningOpenAISim(host, bound, app[OPENAI_SIM_KEY])


ServeFactory = Callable[..., AbstractAsyncContextManager[RunningServer]]


class SimulatorThread:
    """A simulator on its own event loop in a daemon thread, for synchronous tests and scripts."""

    def __init__(self, serve: ServeFactory = serve_openai_sim, **options: Any) -> None:
        self._serve = serve
        self._options = options
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        # What ``serve`` yielded (a RunningOpenAISim has ``.sim`` for stats); typed loosely on purpose.
        self.server: Any = None

    @property
    def url(self) -> str:
        return str(self._running().url)

    @property
    def port(self) -> int:
        return int(self._running().port)

    def _running(self) -> RunningServer:
        if self.server is None:
            raise RuntimeError("the simulator thread is not started")
        running: RunningServer = self.server
        return running

    def start(self, timeout: float = 10.0) -> SimulatorThread:
        self._thread = threading.Thread(target=self._run, name="simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("simulator did not start in time")
        if self._error is not None:
            raise RuntimeError("simulator failed to start") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            run_loop(self._main())
        except BaseException as exc:  # reported to start(), which is waiting for us
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self._serve(**self._options) as server:
            self.server = server
            self._ready.set()
            await self._stop.wait()


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed (the benchmark's setting), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


# ---- command line -----------------------------------------------------------------------------------


def _add_openai_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-key", default=None, help="require this bearer key (default: any key)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before every answer")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay between stream chunks")
    parser.add_argument("--stream-chunks", type=int, default=None, help="force exactly N content chunks")
    parser.add_argument("--no-record", action="store_true", help="do not keep requests for /_sim/requests")
    parser.add_argument("--any-model", action="store_true", help="serve any model id, not only the list")
    parser.add_argument("--extra-field", action="append", default=[], help="accept this extra request field")


async def _serve_openai(args: argparse.Namespace) -> None:
    async with serve_openai_sim(
        args.host,
        args.port,
        api_key=args.api_key,
        latency_ms=args.latency_ms,
        chunk_delay_ms=args.chunk_delay_ms,
        stream_chunks=args.stream_chunks,
        record=not args.no_record,
        strict_models=not args.any_model,
        extra_fields=args.extra_field,
    ) as sim:
        print(f"openai simulator listening on {sim.url}", flush=True)
        await asyncio.Event().wait()


AddArgs = Callable[[argparse.ArgumentParser], None]
Serve = Callable[[argparse.Namespace], Awaitable[None]]

KINDS: dict[str, tuple[AddArgs, Serve]] = {
    "openai": (_add_openai_args, _serve_openai),
    "anthropic": (anthropic_sim.add_cli_args, anthropic_sim.serve_cli),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tollway.simulators", description="Run an API simulator.")
    kinds = parser.add_subparsers(dest="kind", required=True)
    for kind, (add_args, _) in KINDS.items():
        sub = kinds.add_parser(kind, help=f"the {kind} simulator")
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--port", type=int, default=9100)
        add_args(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    _, serve = KINDS[args.kind]

    async def until_signalled() -> None:
        # SIGTERM (how the benchmark stops us) and Ctrl-C both end in a clean shutdown of the server.
        task = asyncio.ensure_future(serve(args))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    run_loop(until_signalled())
    return 0
