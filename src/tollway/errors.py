"""The one error tree. Errors are raised, never returned; each surface renders them in its own shape.

    TollwayError                      500 internal_error        (a bug: never a client's fault)
    ├── ClientError                   400 invalid_request_error (the caller can fix it)
    │   ├── InvalidRequest            400 invalid_request_error
    │   ├── AuthenticationFailed      401 invalid_api_key
    │   ├── InsufficientCredit        402 insufficient_credit
    │   ├── PermissionDenied          403 permission_denied
    │   ├── NotFound                  404 not_found
    │   │   └── ModelNotFound         404 model_not_found
    │   ├── MethodNotAllowed          405 method_not_allowed
    │   ├── Conflict                  409 conflict
    │   ├── PayloadTooLarge           413 request_too_large
    │   ├── UnsupportedMediaType      415 unsupported_media_type
    │   └── RateLimited               429 rate_limit_exceeded   (carries retry_after)
    ├── ServiceUnavailable            503 service_unavailable   (the gateway's own store is down)
    └── UpstreamError                 502 upstream_error        (names the backend)
        ├── UpstreamStatus            the upstream's own 4xx/5xx, body passed through
        ├── UpstreamUnavailable       503 upstream_unavailable
        └── UpstreamTimeout           504 upstream_timeout

`kind` is the family a surface maps to its own vocabulary (OpenAI `type`, Anthropic `error.type`).
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar


class TollwayError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    kind: ClassVar[str] = "api_error"

    def __init__(self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers: dict[str, str] = headers or {}

    @property
    def http_status(self) -> int:
        return self.status

    @property
    def error_code(self) -> str:
        return self.code


class ClientError(TollwayError):
    status = 400
    code = "invalid_request_error"
    kind = "invalid_request_error"


class InvalidRequest(ClientError):
    pass


class AuthenticationFailed(ClientError):
    status = 401
    code = "invalid_api_key"
    kind = "authentication_error"


class InsufficientCredit(ClientError):
    status = 402
    code = "insufficient_credit"
    kind = "insufficient_credit"


class PermissionDenied(ClientError):
    status = 403
    code = "permission_denied"
    kind = "permission_error"


class NotFound(ClientError):
    status = 404
    code = "not_found"
    kind = "not_found_error"


class ModelNotFound(NotFound):
    code = "model_not_found"


class MethodNotAllowed(ClientError):
    status = 405
    code = "method_not_allowed"


class Conflict(ClientError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ClientError):
    status = 413
    code = "request_too_large"
    kind = "request_too_large"


class UnsupportedMediaType(ClientError):
    status = 415
    code = "unsupported_media_type"


class RateLimited(ClientError):
    status = 429
    code = "rate_limit_exceeded"
    kind = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: float, headers: dict[str, str] | None = None):
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(message, headers={**(headers or {}), "retry-after": str(seconds)})
        self.retry_after = seconds


class ServiceUnavailable(TollwayError):
    """A store the gateway itself depends on (Redis, the database) cannot be reached: retry later."""

    status = 503
    code = "service_unavailable"
    kind = "overloaded_error"


class UpstreamError(TollwayError):
    """The backend failed. The message always names the backend so operators know where to look."""

    status = 502
    code = "upstream_error"
    kind = "api_error"

    def __init__(self, message: str, *, backend: str, headers: dict[str, str] | None = None):
        super().__init__(message, headers=headers)
        self.backend = backend


class UpstreamUnavailable(UpstreamError):
    status = 503
    code = "upstream_unavailable"
    kind = "overloaded_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"
    kind = "timeout_error"


class UpstreamStatus(UpstreamError):
    """The upstream answered with an error status: passed through faithfully (status, code, message)."""

    def __init__(
        self,
        message: str,
        *,
        backend: str,
        upstream_status: int,
        upstream_type: str | None = None,
        upstream_code: str | None = None,
        param: str | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message, backend=backend, headers=headers)
        self.upstream_status = upstream_status
        self.upstream_type = upstream_type
        self.upstream_code = upstream_code
        self.param = param
        self.body = body

    @property
    def http_status(self) -> int:
        return self.upstream_status

    @property
    def error_code(self) -> str:
        return self.upstream_code or _code_for_status(self.upstream_status)

    @property
    def family(self) -> str:
        return self.upstream_type or _kind_for_status(self.upstream_status)


_STATUS_CODES = {
    400: "invalid_request_error",
    401: "invalid_api_key",
    403: "permission_denied",
    404: "not_found",
    409: "conflict",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "upstream_error",
    502: "upstream_error",
    503: "upstream_unavailable",
    504: "upstream_timeout",
    529: "overloaded",
}

_STATUS_KINDS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def _code_for_status(status: int) -> str:
    return _STATUS_CODES.get(status, "upstream_error" if status >= 500 else "invalid_request_error")


def _kind_for_status(status: int) -> str:
    return _STATUS_KINDS.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_kind(exc: TollwayError) -> str:
    """The error family a surface maps to its own vocabulary."""
    return exc.family if isinstance(exc, UpstreamStatus) else exc.kind


def is_store_outage(error: BaseException) -> bool:
    """Whether `error` says the database or Redis cannot be reached or used right now (down, restarting,
    locked), as against a bug: a request gets a 503 for it, a background retry one log line. The drivers'
    own types are looked up only when loaded: an embedded gateway never imports redis-py or asyncpg."""
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    outages: list[type[BaseException]] = []
    for module, names in _OUTAGE_TYPES:
        loaded = sys.modules.get(module)
        if loaded is not None:
            outages += [getattr(loaded, name) for name in names]
    return isinstance(error, tuple(outages))


_OUTAGE_TYPES = (
    ("sqlite3", ("OperationalError",)),  # "database is locked" past the busy timeout
    ("sqlalchemy.exc", ("OperationalError", "InterfaceError")),
    ("asyncpg.exceptions", ("PostgresConnectionError", "ConnectionDoesNotExistError")),
    ("redis.exceptions", ("ConnectionError", "TimeoutError")),
)
