"""The one middleware: request ids in and out, and every error rendered in the caller's surface shape.

Kept to a single coroutine layer because it runs on every request; body-size limits are enforced by
aiohttp itself (`client_max_size`) and reported here as 413.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from tollway.api.errors import render_error, surface_for_path
from tollway.api.http import REQUEST_ID, bytes_response
from tollway.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TollwayError,
    is_store_outage,
)
from tollway.metering.protocol import StoreUnavailable
from tollway.pipeline.call import REQUEST_ID_HEADER

log = logging.getLogger("tollway.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MAX_CLIENT_ID = 200


_ID_PREFIX = "req_" + os.urandom(8).hex()  # random per process: ids stay unique across replicas
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """`req_<16 random hex><counter hex>`: unique (it keys the ledger), and no syscall per request."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = new_request_id()
    request[REQUEST_ID] = rid
    client_id = request.headers.get("X-Request-ID")
    try:
        response = await handler(request)
    except TollwayError as exc:
        response = _error_response(request, exc, rid)
    except web.HTTPException as exc:
        response = _error_response(request, _from_http_exception(exc), rid)
    except Exception as exc:
        response = _error_response(request, _unhandled(request, exc, rid), rid)
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = rid
        if client_id and len(client_id) <= _MAX_CLIENT_ID:
            response.headers["x-request-id"] = client_id
    return response


def _unhandled(request: web.Request, exc: Exception, rid: str) -> TollwayError:
    """A 503 when a store the gateway depends on is away (retrying will help; one log line), else a 500
    with the traceback logged (a bug)."""
    if isinstance(exc, StoreUnavailable) or is_store_outage(exc):
        log.error("store_unavailable: %s: %s: %s", request.path, type(exc).__name__, exc)
        return ServiceUnavailable(
            f"The gateway's database or Redis is unavailable ({type(exc).__name__}); retry shortly. "
            f"Request id {rid}."
        )
    log.exception("unhandled error", extra={"request_id": rid, "path": request.path})
    return TollwayError(f"Internal error ({type(exc).__name__}); request id {rid}.")


def _error_response(request: web.Request, exc: TollwayError, rid: str) -> web.Response:
    body = render_error(exc, surface_for_path(request.path), rid)
    return bytes_response(orjson.dumps(body), status=exc.http_status, headers=exc.headers)


def _from_http_exception(exc: web.HTTPException) -> TollwayError:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge("Request body is too large.")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return MethodNotAllowed(
            f"Method not allowed; this route accepts {', '.join(sorted(exc.allowed_methods))}."
        )
    if isinstance(exc, web.HTTPNotFound):
        return NotFound("Unknown route. See docs/api.md for the routes Tollway serves.")
    if exc.status < 500:
        return InvalidRequest(exc.reason or "Bad request.")
    return TollwayError(exc.reason or "Server error.")
