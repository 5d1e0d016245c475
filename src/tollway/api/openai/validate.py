"""Checks of the fields the gateway itself relies on, as a table. Everything else passes through to
the upstream, which validates it (and whose 4xx is passed back faithfully)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tollway.errors import InvalidRequest
from tollway.types import JSON

Check = Callable[[Any], bool]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value: Any) -> bool:
    return _is_int(value) and value >= 1


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string(value: Any) -> bool:
    return isinstance(value, str)


def _bool(value: Any) -> bool:
    return isinstance(value, bool)


def _object(value: Any) -> bool:
    return isinstance(value, dict)


def _stop(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


# field -> (check, what it must be)
CHAT_FIELDS: dict[str, tuple[Check, str]] = {
    "model": (_string, "a string"),
    "stream": (_bool, "a boolean"),
    "stream_options": (_object, "an object"),
    "max_tokens": (_positive_int, "a positive integer"),
    "max_completion_tokens": (_positive_int, "a positive integer"),
    "n": (_positive_int, "a positive integer"),
    "temperature": (_number, "a number"),
    "top_p": (_number, "a number"),
    "seed": (_is_int, "an integer"),
    "stop": (_stop, "a string or an array of strings"),
    "tools": (lambda v: isinstance(v, list), "an array"),
    "response_format": (_object, "an object"),
    "logprobs": (_bool, "a boolean"),
    "user": (_string, "a string"),
}
COMPLETION_FIELDS: dict[str, tuple[Check, str]] = {
    **{
        name: CHAT_FIELDS[name]
        for name in (
            "model",
            "stream",
            "stream_options",
            "max_tokens",
            "n",
            "temperature",
            "top_p",
            "seed",
            "stop",
            "user",
        )
    },
    "echo": (_bool, "a boolean"),
    "logprobs": (_is_int, "an integer"),
}
EMBEDDING_FIELDS: dict[str, tuple[Check, str]] = {
    "model": (_string, "a string"),
    "encoding_format": (lambda v: v in ("float", "base64"), "'float' or 'base64'"),
    "dimensions": (_positive_int, "a positive integer"),
    "user": (_string, "a string"),
}
VALID_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def check_fields(body: JSON, fields: dict[str, tuple[Check, str]]) -> None:
    if "model" not in body:
        raise InvalidRequest("You must provide a model parameter.", param="model")
    for name, value in body.items():  # a body has a few fields; the table has up to 14
        rule = fields.get(name)
        if rule is not None and value is not None and not rule[0](value):
            raise InvalidRequest(f"Invalid type for '{name}': expected {rule[1]}.", param=name)
    if body.get("stream_options") is not None and body.get("stream") is not True:
        raise InvalidRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
        )


def check_chat(body: JSON) -> None:
    check_fields(body, CHAT_FIELDS)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array of message objects.", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages[{index}] must be an object.", param=f"messages[{index}]")
        role = message.get("role")
        if not isinstance(role, str) or role not in VALID_ROLES:  # a list or object is not hashable
            raise InvalidRequest(
                f"Invalid value for messages[{index}].role: {role!r}. Use one of "
                "'system', 'developer', 'user', 'assistant' or 'tool'.",
                param=f"messages[{index}].role",
            )


def check_completion(body: JSON) -> None:
    check_fields(body, COMPLETION_FIELDS)
    prompt = body.get("prompt")
    if prompt is None or not (isinstance(prompt, str | list)):
        raise InvalidRequest("'prompt' must be a string or an array of strings or tokens.", param="prompt")


def check_embedding(body: JSON) -> None:
    check_fields(body, EMBEDDING_FIELDS)
    value = body.get("input")
    if value is None or value == "" or value == []:
        raise InvalidRequest("'input' must be a non-empty string or array.", param="input")
    if not isinstance(value, str | list):
        raise InvalidRequest("'input' must be a string or an array of strings or tokens.", param="input")
