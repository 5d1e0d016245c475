"""OpenAI error bodies for the simulator: one exception type, the wording table, and injected failures.

Everything the simulator refuses is raised as :class:`SimError` and rendered in exactly one place
(``SimError.body``), so the wire shape ``{"error": {"message", "type", "param", "code"}}`` cannot drift.
The messages copy OpenAI's real wording (typos included) so clients that match on text behave the same.
"""

from __future__ import annotations

from typing import Any

import orjson

_NO_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
    "you're accessing the API from your browser and are prompted for a username and password. You can "
    "obtain an API key from https://platform.openai.com/account/api-keys."
)
_BAD_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. "
    "If you have trouble figuring out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)


class SimError(Exception):
    """A refusal the simulator renders as an OpenAI error response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def payload(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def body(self) -> bytes:
        return orjson.dumps(self.payload())


def invalid(message: str, param: str | None = None, code: str | None = None) -> SimError:
    return SimError(400, message, param=param, code=code)


def invalid_type(param: str, expected: str, got: object) -> SimError:
    return invalid(
        f"Invalid type for '{param}': expected {expected}, but got {json_type_name(got)} instead.",
        param,
        "invalid_type",
    )


def missing(param: str) -> SimError:
    return invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def invalid_value(param: str, got: object, allowed: list[str]) -> SimError:
    quoted = [f"'{a}'" for a in allowed]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f", and {quoted[-1]}"
    if len(quoted) == 2:
        listed = f"{quoted[0]} and {quoted[1]}"
    return invalid(f"Invalid value: '{got}'. Supported values are: {listed}.", param, "invalid_value")


def out_of_range(param: str, value: float, bound: float, *, above: bool, integer: bool) -> SimError:
    kind = "integer" if integer else "decimal"
    side, op = ("above maximum", "<=") if above else ("below minimum", ">=")
    code = f"{kind}_{'above_max' if above else 'below_min'}_value"
    return invalid(
        f"Invalid '{param}': {kind} {side} value. "
        f"Expected a value {op} {_num(bound)}, but got {_num(value)} instead.",
        param,
        code,
    )


def empty_array(param: str) -> SimError:
    return invalid(
        f"Invalid '{param}': empty array. "
        "Expected an array with minimum length 1, but got an empty array instead.",
        param,
        "empty_array",
    )


def unrecognized(names: list[str]) -> SimError:
    if len(names) == 1:
        return invalid(f"Unrecognized request argument supplied: {names[0]}")
    return invalid(f"Unrecognized request arguments supplied: {', '.join(sorted(names))}")


def no_api_key() -> SimError:
    return SimError(401, _NO_KEY_MESSAGE)


def wrong_api_key(key: str) -> SimError:
    # OpenAI masks the middle of the key, keeping enough at each end to recognise it.
    shown = f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}" if len(key) > 8 else key
    return SimError(
        401,
        f"Incorrect API key provided: {shown}. You can find your API key at https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def bad_json() -> SimError:
    return SimError(400, _BAD_JSON_MESSAGE)


def model_not_found(model: str) -> SimError:
    return SimError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
    )


def route_not_found(method: str, path: str) -> SimError:
    return SimError(404, f"Invalid URL ({method} {path})")


def json_type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# status -> (type, code, message): what OpenAI (or the edge in front of it) answers with that status.
_INJECTED: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Simulated bad request."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: sk-sim*****. You can find your API key at https://platform.openai.com/account/api-keys.",
    ),
    403: (
        "request_forbidden",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `simulated` does not exist or you do not have access to it.",
    ),
    409: (
        "invalid_request_error",
        "conflict",
        "Simulated conflict: the resource was modified by another request.",
    ),
    422: ("invalid_request_error", "unprocessable_entity", "Simulated unprocessable entity."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in "
        "1s. Visit https://platform.openai.com/account/rate-limits to learn more.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", "bad_gateway", "Bad gateway."),
    503: (
        "server_error",
        "service_unavailable",
        "That model is currently overloaded with other requests. You can retry your request, or contact us "
        "through our help center at help.openai.com if the error persists.",
    ),
    504: ("server_error", "timeout", "Request timed out."),
}


def injected(status: int, retry_after_s: float = 1.0) -> SimError:
    """The error OpenAI would send with ``status``; unknown statuses get a generic body of the right class."""
    kind, code, message = _INJECTED.get(
        status,
        ("server_error" if status >= 500 else "invalid_request_error", None, f"Simulated HTTP {status}."),
    )
    headers: dict[str, str] = {}
    if status == 429:
        headers = {
            "retry-after": f"{retry_after_s:g}",
            "x-ratelimit-limit-requests": "3",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": f"{retry_after_s:g}s",
        }
    return SimError(status, message, type=kind, code=code, headers=headers)


def stream_error() -> SimError:
    """The error event OpenAI writes into a stream that fails after it started."""
    return SimError(
        500, "The server had an error while processing your request. Sorry about that!", type="server_error"
    )
