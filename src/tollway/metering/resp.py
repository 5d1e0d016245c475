"""A minimal asyncio Redis client for the metering hot path only: the admit and settle scripts.

Why not redis-py: measured on the 2-CPU sandbox VM (bench/metering_micro.py), a redis-py asyncio
`EVALSHA` costs ~60-90 µs of client CPU (connection checkout from the pool, per-argument encoding in
Python, a read loop per reply, response callbacks), so admit + settle cost ~105-145 µs of gateway CPU
per call with 16-64 in flight (~270-360 µs one at a time) against a budget of ~40 µs. This client sends
commands encoded by `hiredis.pack_command` (C) over ONE connection and parses replies with
`hiredis.Reader` (C). Commands issued in the same event-loop tick are written together (auto-pipelining:
one `write` per tick, not one per command) and replies are matched to their callers strictly in order
(FIFO), as RESP guarantees on one connection. Admit + settle then cost ~20-40 µs of client CPU with
16-64 in flight (docs/metering.md, "Performance").

Scope, on purpose: RESP2, TCP or a Unix socket, optional AUTH and SELECT; no TLS, no cluster, no
pub/sub. Everything else (grants, balances, the drainer) keeps using redis-py. Atomicity is unchanged:
the Lua scripts remain the unit of atomicity; this only changes how their calls travel.

Errors keep redis-py's types (`NoScriptError`, `ResponseError`, `ConnectionError`), so callers handle
both clients alike. A lost connection fails every command waiting on it with `ConnectionError` (it may
or may not have run: the settle script's `done:` marker makes a retry harmless) and the next command
reconnects. A server that stops answering without closing the connection is treated the same once no
reply has come for `timeout` seconds (redis-py's `socket_timeout`) while commands wait.
"""

from __future__ import annotations

import asyncio
from collections import deque
from itertools import repeat
from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError, NoScriptError, ResponseError

Arg = bytes | str | int | float


def pack(command: tuple[Arg, ...]) -> bytes:
    """A whole command, encoded in C. The hot commands keep their constant parts encoded instead
    (`resp_encode`) and go out through `execute_packed`."""
    # hiredis's stub types the argument as a 1-tuple; any tuple of arguments is accepted.
    return cast(bytes, hiredis.pack_command(cast(Any, command)))


def _reply_error(message: str) -> Exception:
    # The same exception types as redis-py, so `except NoScriptError` works for both clients.
    return NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)


class _Batch:
    """Collects the replies of a pipeline of `size` commands; one future for all of them (one wake-up
    for the caller instead of one per command)."""

    __slots__ = ("future", "replies", "size")

    def __init__(self, future: asyncio.Future[list[Any]], size: int):
        self.future = future
        self.size = size
        self.replies: list[Any] = []


class _Connection(asyncio.Protocol):
    """One connection: writes queued commands once per loop tick, hands replies out in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float | None = None):
        self._loop = loop
        self._reader = hiredis.Reader(replyError=_reply_error)
        self._waiting: deque[asyncio.Future[Any] | _Batch] = deque()
        self._out: list[bytes] = []
        self._scheduled = False
        self._transport: asyncio.Transport | None = None
        self._timeout = timeout
        self._progress = loop.time()  # last reply, or the first command sent to an idle connection
        self._watchdog: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None  # a delayed write of lingering commands
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same methods
        self._transport = cast(asyncio.Transport, transport)
        if self._timeout is not None:
            self._watchdog = self._loop.call_later(self._timeout / 2, self._watch)

    def _watch(self) -> None:
        """A server that stops answering without closing the connection: after `timeout` without a
        reply while commands wait, drop the connection (every waiter gets ConnectionError). One timer
        per connection, not a `wait_for` per command: that would cost more than the command."""
        assert self._timeout is not None
        if self._waiting and self._loop.time() - self._progress > self._timeout:
            if self._transport is not None:
                self._transport.abort()
            return
        self._watchdog = self._loop.call_later(self._timeout / 2, self._watch)

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        self._check_open()
        future: asyncio.Future[Any] = self._loop.create_future()
        if not self._waiting:
            self._progress = self._loop.time()
        self._waiting.append(future)
        self._out.append(packed)
        self._schedule()
        return future

    def send_many(self, packed: list[bytes], linger: float = 0.0) -> asyncio.Future[list[Any]]:
        """`linger` > 0: the commands may wait that long for company (the next command sent without
        linger goes out with them), saving a `send` syscall: ~8 µs of CPU on the sandbox VM."""
        self._check_open()
        future: asyncio.Future[list[Any]] = self._loop.create_future()
        if not self._waiting:
            self._progress = self._loop.time()
        self._waiting.extend(repeat(_Batch(future, len(packed)), len(packed)))
        self._out += packed
        if linger <= 0:
            self._schedule()
        elif self._linger is None and not self._scheduled:
            self._linger = self._loop.call_later(linger, self._flush)
        return future

    def _check_open(self) -> None:
        if self.closed:
            raise ConnectionError("Redis connection lost")

    def _schedule(self) -> None:
        if not self._scheduled:  # every command of this tick leaves in one write
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._out and self._transport is not None and not self.closed:
            data = b"".join(self._out)
            self._out.clear()
            self._transport.write(data)

    def data_received(self, data: bytes) -> None:
        reader, waiting = self._reader, self._waiting
        reader.feed(data)
        self._progress = self._loop.time()
        while (reply := reader.gets()) is not False:
            waiter = waiting.popleft()
            if isinstance(waiter, _Batch):
                waiter.replies.append(reply)
                if len(waiter.replies) == waiter.size and not waiter.future.done():
                    waiter.future.set_result(waiter.replies)
            elif waiter.done():
                continue  # its caller was cancelled: the reply is consumed, and dropped
            elif isinstance(reply, Exception):
                waiter.set_exception(reply)
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._transport = None
        for timer in (self._watchdog, self._linger):
            if timer is not None:
                timer.cancel()
        error = ConnectionError(f"Redis connection lost: {exc}" if exc else "Redis connection closed")
        while self._waiting:
            waiter = self._waiting.popleft()
            future = waiter.future if isinstance(waiter, _Batch) else waiter
            if not future.done():
                future.set_exception(error)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class RespClient:
    """Auto-pipelining Redis client over one lazily (re)connected connection."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 6379,
        path: str | None = None,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        connect_timeout: float = 5.0,
        timeout: float | None = 5.0,
    ):
        self._host, self._port, self._path = host, port, path
        self._db, self._username, self._password = db, username, password
        self._connect_timeout = connect_timeout
        self._timeout = timeout  # no reply for this long while commands wait: the connection is dropped
        self._conn: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None
        self.connects = 0  # how many connections were made (tests watch reconnects)

    @classmethod
    def from_redis(cls, redis: Redis) -> RespClient | None:
        """A client for the same server as a redis-py client; None where this one cannot follow it
        (TLS, credential providers, clusters: anything but a plain TCP or Unix-socket connection)."""
        pool = getattr(redis, "connection_pool", None)  # a cluster client has none
        kwargs = getattr(pool, "connection_kwargs", None)
        if pool is None or kwargs is None or kwargs.get("credential_provider") is not None:
            return None
        connect = float(kwargs.get("socket_connect_timeout") or 5.0)
        timeout = kwargs.get("socket_timeout", 5.0)  # redis-py's reply timeout (its default: 5 s)
        options: dict[str, Any] = {
            "db": int(kwargs.get("db") or 0), "username": kwargs.get("username"),
            "password": kwargs.get("password"),
            "connect_timeout": connect, "timeout": None if timeout is None else float(timeout),
        }  # fmt: skip
        if pool.connection_class is UnixDomainSocketConnection:
            return cls(path=kwargs["path"], **options)
        if pool.connection_class is Connection:
            host, port = str(kwargs.get("host", "localhost")), int(kwargs.get("port", 6379))
            return cls(host=host, port=port, **options)
        return None

    async def execute(self, *args: Arg) -> Any:
        """Sends one command (with whatever else is sent this tick) and returns its reply."""
        return await self.execute_packed(pack(args))

    async def execute_packed(self, packed: bytes) -> Any:
        """`execute` for a command already encoded (`pack`, or parts kept from `resp_encode`)."""
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connection()
        return await conn.send(packed)

    async def execute_many(self, commands: list[tuple[Arg, ...]], linger: float = 0.0) -> list[Any]:
        """Sends the commands in one write (after up to `linger` seconds, unless another command
        leaves sooner); returns their replies in order, error replies as exception objects (not
        raised). A lost connection raises `ConnectionError`."""
        return await self.execute_packed_many([pack(command) for command in commands], linger)

    async def execute_packed_many(self, packed: list[bytes], linger: float = 0.0) -> list[Any]:
        """`execute_many` for commands already encoded."""
        if not packed:
            return []
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connection()
        return await conn.send_many(packed, linger)

    async def aclose(self) -> None:
        self.abort()

    def abort(self) -> None:
        """Closes the connection now; commands waiting on it fail with `ConnectionError`."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _connection(self) -> _Connection:
        # Concurrent callers share one connection attempt.
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_future()
            try:
                conn = await asyncio.wait_for(self._connect(), self._connect_timeout)
            except BaseException as exc:
                failure = ConnectionError(f"cannot connect to Redis: {type(exc).__name__}: {exc}")
                self._connecting.set_exception(failure)
                self._connecting.exception()  # retrieved: no "never retrieved" warning
                self._connecting = None
                if isinstance(exc, asyncio.CancelledError):
                    raise
                raise failure from exc
            self._conn = conn
            self._connecting.set_result(conn)
            self._connecting = None
            return conn
        return await asyncio.shield(self._connecting)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        conn = _Connection(loop, self._timeout)
        if self._path is not None:
            await loop.create_unix_connection(lambda: conn, self._path)
        else:
            await loop.create_connection(lambda: conn, self._host, self._port)
        self.connects += 1
        setup: list[tuple[Arg, ...]] = []
        if self._password is not None:
            auth: tuple[Arg, ...] = ("AUTH", self._password)
            setup.append(auth if self._username is None else ("AUTH", self._username, self._password))
        if self._db:
            setup.append(("SELECT", self._db))
        try:
            for reply in await conn.send_many([pack(c) for c in setup]) if setup else []:
                if isinstance(reply, Exception):
                    raise reply
        except BaseException:  # refused, timed out or cancelled: do not leave the socket open
            conn.close()
            raise
        return conn
