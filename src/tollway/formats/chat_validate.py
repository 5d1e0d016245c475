"""The nested shapes `chat_to_messages` reads from an OpenAI chat request, checked before it translates one.

A chat request for an OpenAI-compatible upstream is passed through, and that upstream judges its nested
shapes (the surface checks the top level, `api.openai.validate`). One for an Anthropic model is rebuilt
part by part, so a part of the wrong kind must be a 400 here, in OpenAI's words, not a crash while
translating. Only what the translation reads is checked; anything it cannot carry it refuses itself.
"""

from __future__ import annotations

from typing import Any

from tollway.errors import InvalidRequest
from tollway.types import JSON

# The strings the translation reads from each kind of non-text part, under the part's own key.
_PART_STRINGS = {"image_url": ("url", "detail"), "file": ("file_data", "filename", "file_id")}


def check_chat_shapes(body: JSON) -> None:
    """Raises `InvalidRequest` naming the first field of the wrong kind. The caller has checked that
    `messages` is a list of objects."""
    for i, message in enumerate(body.get("messages") or []):
        _check_message(f"messages[{i}]", message)
    tools = body.get("tools")
    if tools is not None:
        _expect(isinstance(tools, list), "tools", "an array of tools")
        for i, tool in enumerate(tools):
            _check_tool(f"tools[{i}]", tool)


def _check_message(path: str, message: JSON) -> None:
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        _expect(isinstance(content, list), f"{path}.content", "a string or an array of content parts")
        for j, part in enumerate(content):
            _check_part(f"{path}.content[{j}]", part)
    calls = message.get("tool_calls")
    if calls is not None:
        _expect(isinstance(calls, list), f"{path}.tool_calls", "an array of tool calls")
        for j, call in enumerate(calls):
            _check_call(f"{path}.tool_calls[{j}]", call)
    _optional_str(message, "tool_call_id", path)


def _check_part(path: str, part: Any) -> None:
    _expect(isinstance(part, dict) and isinstance(part.get("type"), str), path, "an object with a 'type'")
    kind = part["type"]
    if kind in ("text", "refusal"):
        _optional_str(part, kind, path)
    elif kind in _PART_STRINGS:
        inner = part.get(kind)
        _expect(isinstance(inner, dict), f"{path}.{kind}", "an object")
        for name in _PART_STRINGS[kind]:
            _optional_str(inner, name, f"{path}.{kind}")
        if kind == "image_url":  # the one string the translation cannot do without
            _expect(isinstance(inner.get("url"), str), f"{path}.image_url.url", "a string")


def _check_call(path: str, call: Any) -> None:
    _expect(isinstance(call, dict), path, "an object")
    _optional_str(call, "id", path)
    function = call.get("function")
    _expect(isinstance(function, dict), f"{path}.function", "an object with 'name' and 'arguments'")
    _optional_str(function, "name", f"{path}.function")
    _optional_str(function, "arguments", f"{path}.function")


def _check_tool(path: str, tool: Any) -> None:
    _expect(isinstance(tool, dict) and isinstance(tool.get("type"), str), path, "an object with a 'type'")
    if tool["type"] != "function":
        return
    function = tool.get("function")
    _expect(isinstance(function, dict), f"{path}.function", "an object")
    _expect(isinstance(function.get("name"), str), f"{path}.function.name", "a string")
    _optional_str(function, "description", f"{path}.function")
    parameters = function.get("parameters")
    _expect(parameters is None or isinstance(parameters, dict), f"{path}.function.parameters", "an object")


def _optional_str(obj: JSON, name: str, path: str) -> None:
    value = obj.get(name)
    _expect(value is None or isinstance(value, str), f"{path}.{name}", "a string")


def _expect(ok: bool, path: str, what: str) -> None:
    if not ok:
        raise InvalidRequest(f"Invalid type for '{path}': expected {what}.", param=path)
