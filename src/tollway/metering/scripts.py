"""Calling the Lua scripts: EVALSHA in one round trip, loading the script only when Redis lacks it, and
a batcher that sends queued calls together in one pipeline, off the caller's path.

With a `RespClient` (metering/resp.py) the calls travel over it, auto-pipelined; without one (TLS, a
credential provider) over redis-py, as before."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from tollway.background import stop_task
from tollway.logs import warn_failure
from tollway.metering.resp import RespClient, pack
from tollway.metering.resp_encode import bulks, header

log = logging.getLogger("tollway.metering.redis")

Call = tuple[list[str], list[Any]]  # KEYS, ARGV
Queued = Call | bytes  # a call, or an EVALSHA the caller encoded itself (Script.packed_start)


class Script:
    """One Lua script, called by its SHA1 (no SCRIPT EXISTS round trip, unlike redis-py pipelines)."""

    def __init__(self, redis: Redis, source: str, fast: RespClient | None = None):
        self.redis = redis
        self.fast = fast
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: list[str], args: list[Any]) -> Any:
        fast = self.fast
        if fast is None:
            try:
                return await self.redis.evalsha(self.sha, len(keys), *keys, *args)
            except NoScriptError:
                await self.load()
                return await self.redis.evalsha(self.sha, len(keys), *keys, *args)
        try:
            return await fast.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:  # a restarted or flushed Redis: load it once, then go on by SHA
            await self.load()
            return await fast.execute("EVALSHA", self.sha, len(keys), *keys, *args)

    def command(self, keys: list[str], args: list[Any]) -> tuple[Any, ...]:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    def packed_start(self, argc: int) -> bytes:
        """The encoded start of an EVALSHA of this script with no keys and `argc` arguments; the
        caller appends the arguments, encoded (`resp_encode`), and sends it with `run_packed`."""
        return header(3 + argc) + bulks(("EVALSHA", self.sha, 0))

    async def run_packed(self, packed: bytes) -> Any:
        """Runs an EVALSHA encoded by the caller (needs the lean client)."""
        assert self.fast is not None, "packed commands travel over the lean client only"
        try:
            return await self.fast.execute_packed(packed)
        except NoScriptError:
            await self.load()
            return await self.fast.execute_packed(packed)

    async def load(self) -> None:
        if self.fast is None:
            await self.redis.script_load(self.source)
        else:
            await self.fast.execute("SCRIPT", "LOAD", self.source)


class Batcher:
    """Queues calls of one script and sends them in one pipeline as soon as the loop is free.

    While a pipeline is in flight new calls wait for the next one, so under load a round trip carries
    many calls. With `linger` (and a `RespClient`), a pipeline waits up to that long for another
    command to leave with it (under load: the next admit), so it costs no `send` of its own. A failed
    pipeline is retried with back-off: the script itself must make a repeated call harmless (the
    settle script keeps a `done:` marker)."""

    def __init__(self, script: Script, *, retry_delay: float = 0.05, linger: float = 0.0):
        self._script = script
        self._linger = linger
        self._queue: list[Queued] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._retry_delay = retry_delay
        self._stopped = False

    def submit(self, keys: list[str], args: list[Any]) -> None:
        self._queue.append((keys, args))
        self._wake.set()

    def submit_packed(self, packed: bytes) -> None:
        """Queues an EVALSHA of the script already encoded (with the lean client only)."""
        self._queue.append(packed)
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tollway-settle-batcher")

    async def aclose(self) -> None:
        self._stopped = True
        await stop_task(self._task)
        self._task = None
        await self.flush()

    def abandon(self) -> None:
        """Stops without sending what is queued (a test's stand-in for kill -9)."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
        self._queue = []

    async def flush(self) -> None:
        """Sends everything queued so far now, waiting for a pipeline already in flight first."""
        await self._drain(0.0)

    async def _drain(self, linger: float) -> None:
        async with self._lock:
            while self._queue:
                batch, self._queue = self._queue, []
                await self._send(batch, linger)

    async def _run(self) -> None:
        while not self._stopped:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain(self._linger)
            except Exception as exc:  # Redis away (or worse): keep the queue, try again shortly
                warn_failure(log, "settle_pipeline_failed", exc)
                await asyncio.sleep(self._retry_delay)
                self._wake.set()

    async def _send(self, batch: list[Queued], linger: float) -> None:
        try:
            missing = await self._pipeline(batch, linger)
            if missing:
                await self._script.load()
                await self._pipeline(missing, 0.0)
        except BaseException:
            self._queue[:0] = batch  # keep them for the retry; `done:` markers skip the ones that ran
            raise

    async def _pipeline(self, batch: list[Queued], linger: float) -> list[Queued]:
        """Runs the batch in one round trip; returns the calls Redis refused for want of the script."""
        script = self._script
        results: list[Any]
        if script.fast is not None:
            commands = [item if isinstance(item, bytes) else pack(script.command(*item)) for item in batch]
            results = await script.fast.execute_packed_many(commands, linger)
        else:
            async with script.redis.pipeline(transaction=False) as pipe:
                for item in batch:
                    assert not isinstance(item, bytes), "packed commands need the lean client"
                    keys, args = item
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                results = await pipe.execute(raise_on_error=False)
        pairs = zip(batch, results, strict=True)
        missing = [call for call, result in pairs if isinstance(result, NoScriptError)]
        failed = [r for r in results if isinstance(r, Exception) and not isinstance(r, NoScriptError)]
        for error in failed:
            log.error("settle_script_failed", exc_info=error)  # a bug in the script: not retryable
        return missing
