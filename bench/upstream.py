"""A fast mock OpenAI upstream for the benchmark: raw asyncio Protocol on uvloop, a few µs a request.

    python -m bench.upstream --port 18000 [--chunk-delay-ms 5] [--latency-ms 50-150 --seed 1]

Serves, over HTTP/1.1 keep-alive (pipelining-safe):
  POST .../chat/completions  a fixed chat.completion with usage; with `"stream": true`, exactly
                             20 SSE chunks, then a usage chunk if `"include_usage": true`, then
                             `data: [DONE]`, with Transfer-Encoding: chunked
  POST .../embeddings        a fixed 16-dimension embedding with usage
  GET  /health, /ready       {"status":"ok"}
Pacing: `--chunk-delay-ms N` makes every stream on this port wait N ms between chunks; a request
header `x-mock-chunk-delay-ms: N` overrides it for one request. The body is never parsed as JSON:
two byte searches decide stream and usage.
Latency: `--latency-ms LO-HI` makes every POST on this port wait a delay drawn uniformly from
[LO, HI] ms before it is answered, a fresh draw per request from a RNG seeded with `--seed`, so
that concurrent connections do not move in lock-step waves the way a fixed delay would make them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import time

import orjson

N_CHUNKS = 20
MODEL = b"gpt-4o-mini-2024-07-18"  # a priced name, like a real upstream echoes back
STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
USAGE_RE = re.compile(rb'"include_usage"\s*:\s*true')
DELAY_HEADER = b"\r\nx-mock-chunk-delay-ms:"
CREATED = int(time.time())


def _response(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\nconnection: keep-alive\r\n\r\n"
        + body
    )


def _chat_body() -> bytes:
    message = {"role": "assistant", "content": "Hello! This is a fixed reply from the mock upstream."}
    return orjson.dumps(
        {
            "id": "chatcmpl-bench0001",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL.decode(),
            "system_fingerprint": "fp_bench",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None, "message": message}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 12, "total_tokens": 24},
        }
    )


def _embedding_body() -> bytes:
    vector = [round(0.001 * i, 3) for i in range(16)]
    return orjson.dumps(
        {
            "object": "list",
            "model": "text-embedding-3-small",
            "data": [{"object": "embedding", "index": 0, "embedding": vector}],
            "usage": {"prompt_tokens": 9, "total_tokens": 9},
        }
    )


def _http_chunk(data: bytes) -> bytes:
    return format(len(data), "x").encode() + b"\r\n" + data + b"\r\n"


def _event(obj: object) -> bytes:
    return _http_chunk(b"data: " + orjson.dumps(obj) + b"\n\n")


def _delta(delta: dict[str, str], finish: str | None = None) -> dict[str, object]:
    return {
        "id": "chatcmpl-bench0001",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL.decode(),
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _stream_chunks() -> list[bytes]:
    """Exactly N_CHUNKS events: the role, N_CHUNKS - 2 tokens, the finish reason."""
    chunks = [_event(_delta({"role": "assistant", "content": ""}))]
    chunks += [_event(_delta({"content": f"tok{i} "})) for i in range(N_CHUNKS - 2)]
    chunks.append(_event(_delta({}, "stop")))
    return chunks


CHAT = _response(b"200 OK", _chat_body())
EMBEDDING = _response(b"200 OK", _embedding_body())
HEALTH = _response(b"200 OK", b'{"status":"ok"}')
NOT_FOUND = _response(b"404 Not Found", b'{"error":{"message":"not found","type":"not_found"}}')
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n"
)
STREAM_CHUNKS = _stream_chunks()
USAGE_CHUNK = _event(
    {
        "id": "chatcmpl-bench0001",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL.decode(),
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": N_CHUNKS - 2, "total_tokens": 10 + N_CHUNKS},
    }
)
STREAM_TAIL = _http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
STREAM_ALL = STREAM_HEAD + b"".join(STREAM_CHUNKS) + STREAM_TAIL
STREAM_ALL_USAGE = STREAM_HEAD + b"".join(STREAM_CHUNKS) + USAGE_CHUNK + STREAM_TAIL


def _header_value(head: bytes, marker: bytes) -> bytes | None:
    start = head.lower().find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = head.find(b"\r\n", start)
    return head[start : end if end >= 0 else len(head)].strip()


class MockProtocol(asyncio.Protocol):
    """One connection: parse requests off the buffer, answer them in order."""

    default_delay = 0.0
    latency: tuple[float, float] | None = None  # seconds, (low, high), for every POST
    rng = random.Random(1)

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.busy = False  # a paced stream is being written; later requests wait their turn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._drain()

    def connection_lost(self, exc: Exception | None) -> None:
        self.buffer = b""

    def _drain(self) -> None:
        while not self.busy:
            request = self._next_request()
            if request is None:
                return
            if self.latency is not None and request[0].startswith(b"POST "):
                # The connection waits (busy) so that pipelined requests keep their order.
                self.busy = True
                delay = self.rng.uniform(*self.latency)
                asyncio.get_running_loop().call_later(delay, self._answer_late, *request)
                return
            self._answer(*request)

    def _answer_late(self, head: bytes, body: bytes) -> None:
        self.busy = False
        if self.transport is None or self.transport.is_closing():
            return
        self._answer(head, body)
        self._drain()

    def _next_request(self) -> tuple[bytes, bytes] | None:
        buf = self.buffer
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = buf[:head_end]
        length = _header_value(head, b"\r\ncontent-length:")
        end = head_end + 4 + (int(length) if length else 0)
        if len(buf) < end:
            return None
        self.buffer = buf[end:]
        return head, buf[head_end + 4 : end]

    def _answer(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        line_end = head.find(b"\r\n")
        method, _, rest = head[: line_end if line_end >= 0 else len(head)].partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        if method == b"POST" and path.endswith(b"/chat/completions"):
            self._chat(head, body)
        elif method == b"POST" and path.endswith(b"/embeddings"):
            self.transport.write(EMBEDDING)
        elif path in (b"/health", b"/ready"):
            self.transport.write(HEALTH)
        else:
            self.transport.write(NOT_FOUND)

    def _chat(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        if not STREAM_RE.search(body):
            self.transport.write(CHAT)
            return
        usage = USAGE_RE.search(body) is not None
        override = _header_value(head, DELAY_HEADER)
        delay = float(override) / 1000 if override else self.default_delay
        if delay <= 0:
            self.transport.write(STREAM_ALL_USAGE if usage else STREAM_ALL)
            return
        self.busy = True
        asyncio.get_running_loop().create_task(self._paced(delay, usage))

    async def _paced(self, delay: float, usage: bool) -> None:
        transport = self.transport
        assert transport is not None
        transport.write(STREAM_HEAD)
        for index, chunk in enumerate(STREAM_CHUNKS):
            if index:
                await asyncio.sleep(delay)
            if transport.is_closing():
                return
            transport.write(chunk)
        transport.write((USAGE_CHUNK if usage else b"") + STREAM_TAIL)
        self.busy = False
        self._drain()


def parse_range_ms(text: str) -> tuple[float, float]:
    """`50-150` (or one number, `100`) as (low, high) in milliseconds."""
    low, _, high = text.partition("-")
    lo, hi = float(low), float(high or low)
    if lo < 0 or hi < lo:
        raise ValueError(f"bad latency range {text!r}: want LOW-HIGH in ms, 0 <= LOW <= HIGH")
    return lo, hi


async def serve(
    host: str, port: int, delay_ms: float, latency_ms: tuple[float, float] | None = None, seed: int = 1
) -> None:
    MockProtocol.default_delay = delay_ms / 1000
    if latency_ms is not None:
        MockProtocol.latency = (latency_ms[0] / 1000, latency_ms[1] / 1000)
    MockProtocol.rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(MockProtocol, host, port, backlog=4096, reuse_address=True)
    latency = f" latency_ms={latency_ms[0]:g}-{latency_ms[1]:g} seed={seed}" if latency_ms else ""
    print(f"mock upstream on http://{host}:{port} chunk_delay_ms={delay_ms:g}{latency}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18000)
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    parser.add_argument("--latency-ms", type=parse_range_ms, help="LOW-HIGH: delay every POST answer")
    parser.add_argument("--seed", type=int, default=1, help="seed of the latency draws (1)")
    args = parser.parse_args()
    import uvloop

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(args.host, args.port, args.chunk_delay_ms, args.latency_ms, args.seed))


if __name__ == "__main__":
    main()
