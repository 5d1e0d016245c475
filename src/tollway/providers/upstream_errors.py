"""Turning an HTTP upstream's failures into the error tree, in one place for every HTTP provider.

Client errors (4xx) pass through faithfully: status, type, code, param and message, so a caller sees what
the upstream said. Server errors and transport failures become 502/503/504 whose message names the backend.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

from tollway.errors import UpstreamError, UpstreamStatus, UpstreamTimeout, UpstreamUnavailable

_PASSED_HEADERS = ("retry-after", "retry-after-ms")


def error_from_status(backend: str, status: int, body: bytes, headers: Any) -> UpstreamError:
    """The error for an upstream's non-2xx answer. `headers` is any mapping of response headers."""
    detail = _parse_error_body(body)
    message = str(detail.get("message") or body[:300].decode("utf-8", "replace") or f"HTTP {status}")
    passed = {name: headers[name] for name in _PASSED_HEADERS if name in headers}
    if status >= 500 or status in (408,):
        return server_error(backend, status, message, passed)
    return UpstreamStatus(
        message,
        backend=backend,
        upstream_status=status,
        upstream_type=_str_or_none(detail.get("type")),
        upstream_code=_str_or_none(detail.get("code")),
        param=_str_or_none(detail.get("param")),
        body=detail,
        headers=passed,
    )


def server_error(
    backend: str, status: int, message: str, headers: dict[str, str] | None = None
) -> UpstreamError:
    text = f"Backend '{backend}' failed with HTTP {status}: {message}"
    if status in (503, 529):
        return UpstreamUnavailable(text, backend=backend, headers=headers)
    if status in (504, 408):
        return UpstreamTimeout(text, backend=backend, headers=headers)
    return UpstreamError(text, backend=backend, headers=headers)


def transport_error(backend: str, exc: BaseException) -> UpstreamError:
    """The error for a failure to talk to the upstream at all (connect, reset, timeout)."""
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamTimeout(f"Backend '{backend}' timed out.", backend=backend)
    if isinstance(exc, aiohttp.ClientConnectorError | ConnectionRefusedError):
        return UpstreamUnavailable(f"Backend '{backend}' is unreachable: {exc}", backend=backend)
    return UpstreamError(f"Backend '{backend}' failed: {type(exc).__name__}: {exc}", backend=backend)


TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, OSError)


def _parse_error_body(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    error = data.get("error", data)
    if isinstance(error, str):
        return {"message": error}
    return error if isinstance(error, dict) else {}


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
