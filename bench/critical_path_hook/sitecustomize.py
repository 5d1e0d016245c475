"""Loaded by a gateway that `bench.critical_path` starts (this folder first on its PYTHONPATH): times each
call inside the process at four points, all aiohttp's, so that every gateway of the bench (the floor
included) is timed alike:

    t0  the first bytes of the request arrive        (server `RequestHandler.data_received`)
    t1  the request to the upstream has been written  (client request's `StreamWriter.write_eof`)
    t2  the first bytes of the upstream's answer      (client `ResponseHandler.data_received`)
    t3  the answer's last write is done               (server `StreamResponse.write_eof`)

and on SIGUSR2 writes `before upstream after` (t1-t0, t2-t1, t3-t2, in ns) per call to
`$TOLLWAY_BENCH_CRITICAL_PATH.<pid>`, forgetting them. One call at a time (c=1) is assumed. Bench-only:
it patches aiohttp internals, valid for the pinned aiohttp (3.14).
"""

from __future__ import annotations

import os

if os.environ.get("TOLLWAY_BENCH_CRITICAL_PATH"):
    import signal
    import time
    from typing import Any

    from aiohttp import client_proto, http_writer, web_protocol, web_response

    _now = time.perf_counter_ns
    _marks = [0, 0, 0]  # t0, t1, t2 of the call in progress
    _calls: list[tuple[int, int, int]] = []
    _server_data = web_protocol.RequestHandler.data_received
    _client_data = client_proto.ResponseHandler.data_received
    _writer_eof = http_writer.StreamWriter.write_eof
    _response_eof = web_response.StreamResponse.write_eof

    def server_data(self: Any, data: bytes) -> None:
        if not _marks[0]:  # a body in a second read keeps the start
            _marks[0] = _now()
        _server_data(self, data)

    async def writer_eof(self: Any, chunk: bytes = b"") -> None:
        await _writer_eof(self, chunk)
        if _marks[0] and not _marks[1]:  # the first end written during a call is the upstream request's
            _marks[1] = _now()

    def client_data(self: Any, data: bytes) -> None:
        if _marks[1] and not _marks[2]:
            _marks[2] = _now()
        _client_data(self, data)

    async def response_eof(self: Any, data: bytes = b"") -> None:
        await _response_eof(self, data)
        t0, t1, t2 = _marks
        if t0 and t1 and t2:
            _calls.append((t1 - t0, t2 - t1, _now() - t2))
        _marks[:] = [0, 0, 0]

    def dump(_signum: int, _frame: object) -> None:
        path = f"{os.environ['TOLLWAY_BENCH_CRITICAL_PATH']}.{os.getpid()}"
        with open(path + ".tmp", "w") as out:
            out.write("\n".join(f"{a} {b} {c}" for a, b, c in _calls))
        os.replace(path + ".tmp", path)
        _calls.clear()

    web_protocol.RequestHandler.data_received = server_data  # type: ignore[method-assign]
    client_proto.ResponseHandler.data_received = client_data  # type: ignore[method-assign]
    http_writer.StreamWriter.write_eof = writer_eof  # type: ignore[method-assign]
    web_response.StreamResponse.write_eof = response_eof  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR2, dump)
