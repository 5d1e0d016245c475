"""Drains the Redis ledger stream into SQL: every replica runs one, in one consumer group.

An entry is acknowledged (and deleted) only after the transaction holding its row committed. A replica
killed in between leaves the entry pending under its consumer name; any live replica claims entries
idle longer than `reclaim_idle_ms` (XAUTOCLAIM) and writes them again. The insert skips request ids
already present, and only inserted rows move `spent`, so the replay never counts twice.

Reads and acknowledgements travel over a lean hiredis connection of its own (`resp.RespClient`, not the
admit/settle one: a blocking read would hold that up) when the server allows one; redis-py parses each
entry into a dict in Python (~5 µs a row). Rows are written by `pg_writer` (one statement per batch on
PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tollway.background import stop_task
from tollway.logs import warn_failure
from tollway.metering import ledger
from tollway.metering.pg_writer import json_row_writer
from tollway.metering.resp import RespClient, pack
from tollway.metering.resp_encode import bulks, bulks_of, header

log = logging.getLogger("tollway.metering.drainer")

Entry = tuple[Any, Any]  # (stream id, fields: a dict (redis-py) or a flat [name, value, ...] list)


class LedgerDrainer:
    def __init__(
        self,
        redis: Redis,
        session_factory: ledger.SessionFactory,
        *,
        stream: str,
        group: str,
        consumer: str,
        block_ms: int = 50,
        pace: float = 0.05,
        batch: int = 500,
        reclaim_idle_ms: int = 30_000,
        fast: RespClient | None = None,
    ):
        self._redis = redis
        self._fast = fast
        self._rows = json_row_writer(session_factory)
        self.stream, self.group, self.consumer = stream, group, consumer
        # the acknowledgements' fixed arguments, encoded once (their ids are appended per batch)
        self._xack_args, self._xdel_args = bulks((b"XACK", stream, group)), bulks((b"XDEL", stream))
        self._block_ms = block_ms
        self._pace = pace
        self._batch = batch
        self._reclaim_idle_ms = reclaim_idle_ms
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self, *, background: bool = True) -> None:
        await self._create_group()
        if background:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="tollway-ledger-drainer")

    async def aclose(self) -> None:
        self._stopped = True
        await stop_task(self._task)
        self._task = None
        try:
            await self.drain()
        finally:
            await self._rows.aclose()
            if self._fast is not None:
                await self._fast.aclose()

    def abandon(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
        if self._fast is not None:
            self._fast.abort()  # a killed process's connections close with it

    async def drain(self) -> int:
        """Writes this consumer's unacknowledged entries (a cancelled blocking read can leave one
        delivered but unprocessed) and every entry not yet delivered to anyone; returns how many."""
        total = 0
        async with self._lock:
            for start in ("0", ">"):
                while (count := await self._read_and_write(block_ms=None, start=start)) > 0:
                    total += count
        return total

    async def reclaim(self, min_idle_ms: int | None = None) -> int:
        """Claims entries another consumer took but never acknowledged, and writes them."""
        idle = self._reclaim_idle_ms if min_idle_ms is None else min_idle_ms
        total, cursor = 0, "0-0"
        async with self._lock:
            while True:
                reply = await self._redis.xautoclaim(
                    self.stream, self.group, self.consumer, idle, cursor, count=self._batch
                )
                cursor, entries = reply[0], reply[1]
                total += await self._write(entries)
                if _id(cursor) == "0-0":
                    return total

    async def _run(self) -> None:
        next_reclaim = time.monotonic() + self._reclaim_idle_ms / 1000
        # The flag, not only the cancellation, ends the loop: a client library may turn a cancelled
        # blocking read into an ordinary error, and another blocking read would then take entries.
        while not self._stopped:
            try:
                async with self._lock:
                    count = await self._read_and_write(block_ms=self._block_ms)
                if 0 < count < self._batch:
                    # A short batch: let rows gather for `pace` seconds so a trickle of calls costs a
                    # transaction per pace, not one per call. A full batch goes on at once.
                    await asyncio.sleep(self._pace)
                if time.monotonic() >= next_reclaim:
                    next_reclaim = time.monotonic() + self._reclaim_idle_ms / 1000
                    await self.reclaim()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or the database is away: keep the entries, try again
                warn_failure(log, "ledger_drain_failed", exc)
                await asyncio.sleep(0.5)

    async def _create_group(self) -> None:
        with contextlib.suppress(ResponseError):  # BUSYGROUP: another replica made it first
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)

    async def _read_and_write(self, *, block_ms: int | None, start: str = ">") -> int:
        try:
            reply = await self._read(block_ms, start)
        except ResponseError as exc:
            if not str(exc).startswith("NOGROUP"):
                raise
            # Redis lost the stream and its group (restarted without persistence, or flushed). The calls
            # settled since went to a new stream that no group reads: make the group at its start and
            # read again, or their ledger rows would never reach the database.
            log.warning("ledger_group_recreated: %s", self.stream)
            await self._create_group()
            reply = await self._read(block_ms, start)
        return await self._write(_entries(reply))

    async def _read(self, block_ms: int | None, start: str) -> Any:
        if self._fast is None:
            reply = await self._redis.xreadgroup(
                self.group, self.consumer, {self.stream: start}, count=self._batch, block=block_ms
            )
        else:
            block = () if block_ms is None else ("BLOCK", block_ms)
            reply = await self._fast.execute(
                "XREADGROUP", "GROUP", self.group, self.consumer, "COUNT", self._batch, *block,
                "STREAMS", self.stream, start,
            )  # fmt: skip
        return reply

    async def _write(self, entries: list[Entry]) -> int:
        if not entries:
            return 0
        # Rows pass through as bytes: on PostgreSQL they reach the database undecoded. An entry deleted
        # while pending has no fields; an entry without a row is dropped, not retried forever.
        found = (_row(fields) for _, fields in entries if fields)
        await self._rows.write([blob.encode() if isinstance(blob, str) else blob for blob in found if blob])
        await self._acknowledge([entry_id for entry_id, _ in entries])
        return len(entries)

    async def _acknowledge(self, ids: list[Any]) -> None:
        """XACK and XDEL together (MULTI): an entry acknowledged but left in the stream would stay."""
        if self._fast is None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xack(self.stream, self.group, *ids)
                pipe.xdel(self.stream, *ids)
                await pipe.execute()
            return
        # The ids (hiredis gives them as bytes) are encoded once for both commands.
        encoded = bulks_of([i if isinstance(i, bytes) else str(i).encode() for i in ids])
        replies = await self._fast.execute_packed_many(
            [
                pack(("MULTI",)),
                header(3 + len(ids)) + self._xack_args + encoded,
                header(2 + len(ids)) + self._xdel_args + encoded,
                pack(("EXEC",)),
            ]
        )
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply


def _row(fields: Any) -> Any:
    """The ledger row of an entry's fields: `{b"r": row}` from redis-py, `[b"r", row]` from hiredis."""
    if isinstance(fields, dict):
        return fields.get(b"r") or fields.get("r")
    for at in range(0, len(fields) - 1, 2):
        if fields[at] in (b"r", "r"):
            return fields[at + 1]
    return None


def _entries(reply: Any) -> list[Entry]:
    """The entries of an XREADGROUP reply on one stream: RESP2 `[[stream, entries]]`,
    RESP3 `{stream: [entries]}`; None when a blocking read timed out."""
    if not reply:
        return []
    if isinstance(reply, dict):
        value = next(iter(reply.values()))
        return list(value[0]) if value and isinstance(value[0], list) else list(value)
    return list(reply[0][1])


def _id(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
