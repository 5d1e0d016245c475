"""`api.streaming.write_sse` once a stream's 200 is out: a failure, even a bug, ends the body with an error
event in the surface's shape; a second response written onto the connection would corrupt it. And what
comes after the provider's last event goes out with the end of the body, in one write."""

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
    complete = False  # set by the events below once "the provider's last event" is in

    async def aclose(self) -> None:
        self.closed = True


def _error_event(exc: TollwayError) -> bytes:
    return b'data: {"error": "' + exc.message.encode() + b'"}\n\n'


async def _serve(events: AsyncIterator[bytes], stream: _Stream, closing: bytes = b"") -> tuple[int, bytes]:
    """Status and whole body of `write_sse` over `events`, as a client reads them."""

    async def handler(request: web.Request) -> web.StreamResponse:
        request[REQUEST_ID] = "req_test"  # as the request middleware sets it
        call = Call("req_test", Surface.OPENAI, Operation.CHAT, Principal("k", "tw_k", "p", "p", frozenset()))
        return await write_sse(request, call, stream, events, _error_event, closing)  # type: ignore[arg-type]

    app = web.Application()
    app.router.add_get("/", handler)
    async with TestClient(TestServer(app)) as client:
        answer = await client.get("/")
        return answer.status, await answer.read()  # a whole, well-formed chunked body


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bytes]]:
    """Each body write of the responses, in order: ("write", data) or ("eof", data)."""
    seen: list[tuple[str, bytes]] = []
    write, write_eof = web.StreamResponse.write, web.StreamResponse.write_eof

    async def spy_write(self: web.StreamResponse, data: bytes) -> None:
        seen.append(("write", bytes(data)))
        await write(self, data)

    async def spy_write_eof(self: web.StreamResponse, data: bytes = b"") -> None:
        if not (data == b"" and seen and seen[-1][0] == "eof"):  # not aiohttp's own no-op after ours
            seen.append(("eof", bytes(data)))
        await write_eof(self, data)

    monkeypatch.setattr(web.StreamResponse, "write", spy_write)
    monkeypatch.setattr(web.StreamResponse, "write_eof", spy_write_eof)
    return seen


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

    status, body = await _serve(events(), stream)
    assert status == 200
    assert body == b"data: one\n\n" + _error_event(TollwayError(told))
    assert stream.closed


async def test_what_follows_the_last_event_goes_out_with_the_end_of_the_body(
    writes: list[tuple[str, bytes]],
) -> None:
    stream = _Stream()

    async def events() -> AsyncIterator[bytes]:
        yield b"data: one\n\n"
        stream.complete = True  # the provider's last event is in: the rest is the answer's end
        yield b"data: two\n\n"
        yield b"data: three\n\n"

    status, body = await _serve(events(), stream, b"data: [DONE]\n\n")
    assert (status, body) == (200, b"data: one\n\ndata: two\n\ndata: three\n\ndata: [DONE]\n\n")
    assert writes == [("write", b"data: one\n\n"), ("eof", b"data: two\n\ndata: three\n\ndata: [DONE]\n\n")]


async def test_a_failure_after_the_last_event_keeps_the_order_of_the_end(
    writes: list[tuple[str, bytes]],
) -> None:
    stream = _Stream()

    async def events() -> AsyncIterator[bytes]:
        stream.complete = True
        yield b"data: one\n\n"
        raise TollwayError("the translation broke")

    status, body = await _serve(events(), stream, b"data: [DONE]\n\n")
    ending = b"data: one\n\n" + _error_event(TollwayError("the translation broke"))
    assert (status, body, writes) == (200, ending, [("eof", ending)])
