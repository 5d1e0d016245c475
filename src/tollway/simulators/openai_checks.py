"""Primitive request checks for the OpenAI simulator, and the table-driven field check.

A check is ``check(param, value)``: it returns quietly or raises :class:`SimError` carrying OpenAI's
wording and the ``param`` path. Endpoint tables (``openai_validate``) are built from these.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from tollway.simulators import openai_errors as err

Check = Callable[[str, Any], None]


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(lo: float | None = None, hi: float | None = None) -> Check:
    def check(param: str, value: Any) -> None:
        if not is_number(value):
            raise err.invalid_type(param, "a decimal", value)
        _range(param, value, lo, hi, integer=False)

    return check


def integer(lo: int | None = None, hi: int | None = None) -> Check:
    def check(param: str, value: Any) -> None:
        if not is_int(value):
            raise err.invalid_type(param, "an integer", value)
        _range(param, value, lo, hi, integer=True)

    return check


def _range(param: str, value: float, lo: float | None, hi: float | None, *, integer: bool) -> None:
    if lo is not None and value < lo:
        raise err.out_of_range(param, value, lo, above=False, integer=integer)
    if hi is not None and value > hi:
        raise err.out_of_range(param, value, hi, above=True, integer=integer)


def typed(kind: type, name: str) -> Check:
    def check(param: str, value: Any) -> None:
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise err.invalid_type(param, name, value)

    return check


boolean = typed(bool, "a boolean")
string = typed(str, "a string")
obj = typed(dict, "an object")
array = typed(list, "an array")


def anything(param: str, value: Any) -> None:
    return None


def enum(*allowed: str) -> Check:
    def check(param: str, value: Any) -> None:
        string(param, value)
        if value not in allowed:
            raise err.invalid_value(param, value, list(allowed))

    return check


def stop(param: str, value: Any) -> None:
    if isinstance(value, str):
        return
    array(param, value)
    if len(value) > 4:
        raise err.invalid(
            f"Invalid '{param}': array too long. Expected an array with maximum length 4, "
            f"but got an array with length {len(value)} instead.",
            param,
            "array_above_max_length",
        )
    for i, item in enumerate(value):
        string(f"{param}[{i}]", item)


def metadata(param: str, value: Any) -> None:
    obj(param, value)
    for key, item in value.items():
        string(f"{param}.{key}", item)


def modalities(param: str, value: Any) -> None:
    array(param, value)
    for i, item in enumerate(value):
        enum("text", "audio")(f"{param}[{i}]", item)


def stream_options(param: str, value: Any) -> None:
    obj(param, value)
    for key in ("include_usage", "include_obfuscation"):
        if value.get(key) is not None:
            boolean(f"{param}.{key}", value[key])


def check_fields(body: Mapping[str, Any], table: Mapping[str, Check], extra: Collection[str]) -> None:
    """Refuse unknown fields, then run each given field's check (``null`` counts as absent)."""
    unknown = [name for name in body if name not in table and name not in extra]
    if unknown:
        raise err.unrecognized(unknown)
    # Walk the body, not the table: a request names a handful of the ~40 fields an endpoint knows.
    for name, value in body.items():
        check = table.get(name)
        if check is not None and value is not None:
            check(name, value)


def require_model(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise err.invalid("you must provide a model parameter")
    string("model", model)
    return str(model)


def require_stream_for_options(body: Mapping[str, Any]) -> None:
    if body.get("stream_options") is not None and not body.get("stream"):
        raise err.invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options"
        )


def required(container: dict[str, Any], key: str, param: str, check: Check) -> Any:
    value = container.get(key)
    if value is None:
        raise err.missing(f"{param}.{key}")
    check(f"{param}.{key}", value)
    return value
