"""The error tree rendered in each surface's own shape, in one place."""

from __future__ import annotations

from typing import Any

from tollway.errors import TollwayError, UpstreamError, UpstreamStatus, error_kind
from tollway.types import Surface

# Neutral kinds -> the `type` each wire format uses.
_OPENAI_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "invalid_request_error",
    "permission_error": "invalid_request_error",
    "not_found_error": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "rate_limit_error": "rate_limit_error",
    "insufficient_credit": "insufficient_credit",
    "api_error": "server_error",
    "overloaded_error": "server_error",
    "timeout_error": "server_error",
}
_ANTHROPIC_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "request_too_large": "request_too_large",
    "rate_limit_error": "rate_limit_error",
    "insufficient_credit": "billing_error",
    "api_error": "api_error",
    "overloaded_error": "overloaded_error",
    "timeout_error": "timeout_error",
}


def surface_for_path(path: str) -> Surface:
    if path.startswith("/v1/messages"):
        return Surface.ANTHROPIC
    if path.startswith("/infra/"):
        return Surface.NATIVE
    if path.startswith("/admin"):
        return Surface.ADMIN
    return Surface.OPENAI


def openai_error(exc: TollwayError) -> dict[str, Any]:
    kind = error_kind(exc)
    upstream_type = exc.upstream_type if isinstance(exc, UpstreamStatus) else None
    error: dict[str, Any] = {
        "message": exc.message,
        "type": upstream_type or _OPENAI_TYPES.get(kind, kind),
        "param": exc.param,
        "code": exc.error_code,
    }
    if isinstance(exc, UpstreamError):
        error["backend"] = exc.backend
    return {"error": error}


def anthropic_error(exc: TollwayError) -> dict[str, Any]:
    kind = error_kind(exc)
    return {
        "type": "error",
        "error": {"type": _ANTHROPIC_TYPES.get(kind, "api_error"), "message": exc.message},
    }


def native_error(exc: TollwayError, request_id: str) -> dict[str, Any]:
    error: dict[str, Any] = {"code": exc.error_code, "message": exc.message, "param": exc.param}
    if isinstance(exc, UpstreamError):
        error["backend"] = exc.backend
    return {"status": "error", "error": error, "meta": {"request_id": request_id}}


def render_error(exc: TollwayError, surface: Surface, request_id: str) -> dict[str, Any]:
    if surface is Surface.ANTHROPIC:
        return anthropic_error(exc)
    if surface is Surface.NATIVE:
        return native_error(exc, request_id)
    return openai_error(exc)
