"""`api.streaming.write_sse` once a stream's 200 is out: a failure, even a bug, ends the body with an error
event in the surface's shape; a second response written onto the connection would corrupt it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tollway.api.http import REQUEST_ID
from tollway.api.streaming import write_sse
from tollway.errors import TollwayError
from tollway.pipeline import Call
from tollway.types import Operation, Principal, Surface


class _Stream:
    closed = False

    async def aclose(self) -> None:
        self.closed = True


def _error_event(exc: TollwayError) -> bytes:
    return b'data: {"error": "' + exc.message.encode() + b'"}\n\n'


@pytest.mark.parametrize(
    ("failure", "told"),
    [
        (RuntimeError("a bug"), "Internal error (RuntimeError); request id req_test."),  # not its text
        (TollwayError("upstream broke"), "upstream broke"),
    ],
)
async def test_a_failure_mid_stream_ends_the_body_with_an_error_event(failure: Exception, told: str) -> None:
    stream = _Stream()

    async def events() -> AsyncIterator[bytes]:
        yield b"data: one\n\n"
        raise failure

    async def handler(request: web.Request) -> web.StreamResponse:
        request[REQUEST_ID] = "req_test"  # as the request middleware sets it
        call = Call("req_test", Surface.OPENAI, Operation.CHAT, Principal("k", "tw_k", "p", "p", frozenset()))
        return await write_sse(request, call, stream, events(), _error_event)  # type: ignore[arg-type]

    app = web.Application()
    app.router.add_get("/", handler)
    async with TestClient(TestServer(app)) as client:
        answer = await client.get("/")
        body = await answer.read()  # a whole, well-formed chunked body
    assert answer.status == 200
    assert body == b"data: one\n\n" + _error_event(TollwayError(told))
    assert stream.closed
