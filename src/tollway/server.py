"""Running the gateway: one process, or a supervisor with N worker processes sharing the port.

Workers bind the same port with SO_REUSEPORT, so the kernel spreads connections without a proxy in
front. Shared state (limits, credits) must then live in Redis: with several workers and metering on,
TOLLWAY_REDIS_URL is required, because in-process limits would multiply by the number of workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from aiohttp import web

from tollway.api.http import SERVICES
from tollway.app import create_app
from tollway.logs import configure as configure_logging
from tollway.settings import ConfigError, Settings

log = logging.getLogger("tollway.server")


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency everywhere but Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(settings: Settings) -> None:
    with _pidfile(settings):
        _serve(settings)


def _serve(settings: Settings) -> None:
    if settings.workers > 1:
        if settings.metering and not settings.redis_url:
            raise ConfigError(
                "--workers > 1 needs TOLLWAY_REDIS_URL so that limits and credits stay exact across workers "
                "(or set TOLLWAY_METERING=false)."
            )
        _supervise(settings)
    else:
        _run_worker(settings, reuse_port=False)


def _run_worker(settings: Settings, *, reuse_port: bool) -> None:
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_serve_forever(settings, reuse_port))


async def _serve_forever(settings: Settings, reuse_port: bool) -> None:
    app = create_app(settings)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=10.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port or None, backlog=1024)
    await site.start()
    _tune_gc()
    log.info("tollway listening on http://%s:%s", settings.host, settings.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # SIGHUP: the CLI changed keys or projects in the database; forget cached principals now.
    loop.add_signal_handler(
        signal.SIGHUP, lambda: app[SERVICES].auth.invalidate() if SERVICES in app else None
    )
    try:
        await stop.wait()
    finally:
        await runner.cleanup()  # graceful: finishes in-flight requests, flushes the ledger


def _tune_gc() -> None:
    """Keep garbage collection off the tail latency.

    Everything built at start-up (modules, services, the catalog) lives until exit: freezing it moves it
    out of the collector's view, so full collections only walk what requests allocate. A larger first
    generation threshold makes young collections rarer; request objects are freed by reference counting
    anyway, and cycles are rare on the hot path.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def _supervise(settings: Settings) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [_start_worker(context, settings) for _ in range(settings.workers)]
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for process in workers:
            if process.is_alive() and process.pid:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()

    def forward_hup(_signum: int, _frame: object) -> None:
        for process in workers:
            if process.is_alive() and process.pid:
                os.kill(process.pid, signal.SIGHUP)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, forward_hup)
    while not stopping:
        for index, process in enumerate(workers):
            if not process.is_alive() and not stopping:
                log.warning("worker %s exited with %s; restarting", process.pid, process.exitcode)
                workers[index] = _start_worker(context, settings)
        time.sleep(0.5)
    for process in workers:
        process.join(timeout=15)
    sys.exit(0)


def _start_worker(
    context: multiprocessing.context.SpawnContext, settings: Settings
) -> multiprocessing.process.BaseProcess:
    process = context.Process(target=_spawned_worker, args=(settings,), daemon=False)
    process.start()
    return process


def pidfile_path(settings: Settings) -> Path:
    return settings.data_dir / "tollway.pid"


@contextlib.contextmanager
def _pidfile(settings: Settings) -> Iterator[None]:
    """Lets the CLI find the running server of this data directory (to signal it on key changes)."""
    path = pidfile_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(os.getpid()))
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if path.read_text() == str(os.getpid()):
                path.unlink()


def running_server_pid(settings: Settings) -> int | None:
    """The pid of the server using this data directory, if one is running."""
    try:
        pid = int(pidfile_path(settings).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _spawned_worker(settings: Settings) -> None:
    configure_logging(settings.log_level)  # a spawned process inherits no logging set-up
    _run_worker(settings, reuse_port=True)
