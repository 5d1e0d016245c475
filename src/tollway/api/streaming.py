"""Writing a metered stream to the caller as SSE, whatever the surface's event format.

The response headers go out before the first event, so they carry the request id, model, backend and
rate-limit headers but not the cost (known only at the end; it is in the ledger). What follows the
provider's last event (often the whole answer's last block: its final chunks, usage and end marker
arrive in one read) goes out with the closing event and the end of the body in a single write: one
send instead of two per stream, and the caller sees the end sooner. A failure after the
first event ends the stream with an error event in the surface's shape; a caller who disconnects
cancels the handler, and `finally` closes the upstream and settles what was used.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from tollway.api.http import REQUEST_ID
from tollway.errors import TollwayError
from tollway.pipeline import Call, MeteredStream
from tollway.pipeline.call import REQUEST_ID_HEADER

log = logging.getLogger("tollway.http")
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
ErrorEvent = Callable[[TollwayError], bytes]


async def write_sse(
    request: web.Request,
    call: Call,
    stream: MeteredStream,
    events: AsyncIterator[bytes],
    error_event: ErrorEvent,
    closing: bytes = b"",
) -> web.StreamResponse:
    response = web.StreamResponse(headers={**SSE_HEADERS, **call.headers, **_id_headers(request)})
    try:
        await response.prepare(request)
        tail = b""  # blocks made once the provider's last event is in: sent with the end of the body
        try:
            async for block in events:
                if stream.complete:
                    tail += block
                else:
                    await response.write(block)
        except TollwayError as exc:
            closing = error_event(exc)
        except Exception as exc:  # a bug, once the 200 is out: an error event, never a second response
            log.exception("stream_failed", extra={"request_id": call.request_id})
            closing = error_event(
                TollwayError(f"Internal error ({type(exc).__name__}); request id {call.request_id}.")
            )
        await response.write_eof(tail + closing)  # the answer's end, the closing event and the body's end
    except ConnectionResetError:
        pass  # the caller went away mid-stream: nothing to tell them; `finally` settles what was used
    finally:
        await stream.aclose()
    return response


def _id_headers(request: web.Request) -> dict[str, str]:
    headers: dict[str, str] = {REQUEST_ID_HEADER: str(request[REQUEST_ID])}
    client_id = request.headers.get("X-Request-ID")
    if client_id and len(client_id) <= 200:
        headers["x-request-id"] = client_id
    return headers
