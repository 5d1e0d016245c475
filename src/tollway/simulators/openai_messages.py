"""Chat-specific checks: messages and their parts, tool-call pairing, tools, tool_choice, response_format.

The pairing rule is OpenAI's: an assistant message with ``tool_calls`` must be followed by one tool
message per call id, and a tool message must answer a call of the assistant message before it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from tollway.simulators import openai_errors as err
from tollway.simulators.openai_checks import anything, array, boolean, enum, obj, required, string

_ROLES = ["system", "assistant", "user", "function", "tool", "developer"]
_USER_PARTS = ["text", "image_url", "input_audio", "file"]
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def messages(param: str, value: Any) -> None:
    array(param, value)
    if not value:
        raise err.empty_array(param)
    for i, message in enumerate(value):
        _message(f"{param}[{i}]", message)
    _check_tool_pairing(value)


def _message(param: str, message: Any) -> None:
    obj(param, message)
    role = message.get("role")
    if role is None:
        raise err.missing(f"{param}.role")
    if role not in _ROLES:
        raise err.invalid_value(f"{param}.role", role, _ROLES)
    if message.get("name") is not None:
        string(f"{param}.name", message["name"])
    _MESSAGE_CHECKS[role](param, message)


def _content(param: str, content: Any, part_types: list[str]) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise err.invalid_type(param, "one of a string or array of objects", content)
    for j, part in enumerate(content):
        _part(f"{param}[{j}]", part, part_types)


def _part(param: str, part: Any, part_types: list[str]) -> None:
    obj(param, part)
    kind = part.get("type")
    if kind is None:
        raise err.missing(f"{param}.type")
    if kind not in part_types:
        raise err.invalid_value(f"{param}.type", kind, part_types)
    _PART_CHECKS[kind](param, part)


def _text_part(param: str, part: dict[str, Any]) -> None:
    required(part, "text", param, string)


def _refusal_part(param: str, part: dict[str, Any]) -> None:
    required(part, "refusal", param, string)


def _image_part(param: str, part: dict[str, Any]) -> None:
    image = required(part, "image_url", param, obj)
    url = required(image, "url", f"{param}.image_url", string)
    if not url.startswith(("http://", "https://", "data:image/")):
        raise err.invalid(
            f"Invalid '{param}.image_url.url'. Expected a valid URL or a base64-encoded data URL with an "
            "image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU=').",
            f"{param}.image_url.url",
            "invalid_value",
        )
    if image.get("detail") is not None:
        enum("auto", "low", "high")(f"{param}.image_url.detail", image["detail"])


def _audio_part(param: str, part: dict[str, Any]) -> None:
    audio = required(part, "input_audio", param, obj)
    required(audio, "data", f"{param}.input_audio", string)
    enum("wav", "mp3")(
        f"{param}.input_audio.format", required(audio, "format", f"{param}.input_audio", string)
    )


def _file_part(param: str, part: dict[str, Any]) -> None:
    file = required(part, "file", param, obj)
    if file.get("file_id") is None and file.get("file_data") is None:
        raise err.missing(f"{param}.file.file_id")


_PART_CHECKS: dict[str, Callable[[str, dict[str, Any]], None]] = {
    "text": _text_part,
    "refusal": _refusal_part,
    "image_url": _image_part,
    "input_audio": _audio_part,
    "file": _file_part,
}


def _plain_message(param: str, message: dict[str, Any]) -> None:
    _content(f"{param}.content", required(message, "content", param, anything), ["text"])


def _user_message(param: str, message: dict[str, Any]) -> None:
    _content(f"{param}.content", required(message, "content", param, anything), _USER_PARTS)


def _assistant_message(param: str, message: dict[str, Any]) -> None:
    calls = message.get("tool_calls")
    if message.get("content") is not None:
        _content(f"{param}.content", message["content"], ["text", "refusal"])
    elif calls is None and message.get("function_call") is None:
        raise err.missing(f"{param}.content")
    if calls is not None:
        array(f"{param}.tool_calls", calls)
        for j, call in enumerate(calls):
            _tool_call(f"{param}.tool_calls[{j}]", call)


def _tool_call(param: str, call: Any) -> None:
    obj(param, call)
    required(call, "id", param, string)
    enum("function", "custom")(f"{param}.type", required(call, "type", param, string))
    if call["type"] == "function":
        function = required(call, "function", param, obj)
        required(function, "name", f"{param}.function", string)
        required(function, "arguments", f"{param}.function", string)


def _tool_message(param: str, message: dict[str, Any]) -> None:
    required(message, "tool_call_id", param, string)
    _content(f"{param}.content", required(message, "content", param, anything), ["text"])


def _function_message(param: str, message: dict[str, Any]) -> None:
    required(message, "name", param, string)


_MESSAGE_CHECKS: dict[str, Callable[[str, dict[str, Any]], None]] = {
    "system": _plain_message,
    "developer": _plain_message,
    "user": _user_message,
    "assistant": _assistant_message,
    "tool": _tool_message,
    "function": _function_message,
}


def _check_tool_pairing(history: list[dict[str, Any]]) -> None:
    """Every assistant tool call must be answered by the tool messages right after it, and vice versa."""
    pending: list[str] = []
    answerable: set[str] = set()
    owner = -1
    for i, message in enumerate(history):
        role = message["role"]
        if role == "tool":
            call_id = message["tool_call_id"]
            if owner < 0:
                raise err.invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            if call_id not in answerable:
                raise err.invalid(
                    f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' of "
                    "previous message.",
                    f"messages.[{i}].tool_call_id",
                )
            pending = [p for p in pending if p != call_id]
            continue
        _refuse_unanswered(pending, owner)
        calls = message.get("tool_calls") if role == "assistant" else None
        pending = [call["id"] for call in calls or ()]
        answerable = set(pending)
        owner = i if pending else -1
    _refuse_unanswered(pending, owner)


def _refuse_unanswered(pending: list[str], owner: int) -> None:
    if pending:
        raise err.invalid(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            "'tool_call_id'. The following tool_call_ids did not have response messages: "
            + ", ".join(pending),
            f"messages.[{owner}].role",
        )


# ---- tools, tool_choice, response_format ------------------------------------------------------------


def tools(param: str, value: Any) -> None:
    array(param, value)
    if not value:
        raise err.empty_array(param)
    for i, tool in enumerate(value):
        _tool(f"{param}[{i}]", tool)


def _tool(param: str, tool: Any) -> None:
    obj(param, tool)
    kind = required(tool, "type", param, string)
    if kind not in ("function", "custom"):
        raise err.invalid_value(f"{param}.type", kind, ["function", "custom"])
    if kind == "custom":
        required(required(tool, "custom", param, obj), "name", f"{param}.custom", string)
        return
    function = required(tool, "function", param, obj)
    name = required(function, "name", f"{param}.function", string)
    if not _TOOL_NAME.match(name):
        raise err.invalid(
            f"Invalid '{param}.function.name': string does not match pattern. Expected a string that matches "
            "the pattern '^[a-zA-Z0-9_-]+$'.",
            f"{param}.function.name",
            "invalid_value",
        )
    for key, check in (("description", string), ("parameters", obj), ("strict", boolean)):
        if function.get(key) is not None:
            check(f"{param}.function.{key}", function[key])


def tool_choice(param: str, value: Any) -> None:
    if isinstance(value, str):
        if value not in ("none", "auto", "required"):
            raise err.invalid_value(param, value, ["none", "auto", "required"])
        return
    obj(param, value)
    kind = required(value, "type", param, string)
    if kind not in ("function", "allowed_tools", "custom"):
        raise err.invalid_value(f"{param}.type", kind, ["function", "allowed_tools", "custom"])
    if kind == "function":
        required(required(value, "function", param, obj), "name", f"{param}.function", string)


def check_tool_choice_against_tools(body: Mapping[str, Any]) -> None:
    declared = body.get("tools")
    for name in ("tool_choice", "parallel_tool_calls"):
        if body.get(name) is not None and not declared:
            raise err.invalid(
                f"Invalid value for '{name}': '{name}' is only allowed when 'tools' are specified.", name
            )
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        wanted = choice["function"]["name"]
        names = {t["function"]["name"] for t in declared or () if t.get("type") == "function"}
        if wanted not in names:
            raise err.invalid(
                f"Invalid value for 'tool_choice': function '{wanted}' is not one of the functions "
                "in 'tools'.",
                "tool_choice",
            )


def response_format(param: str, value: Any) -> None:
    obj(param, value)
    kind = required(value, "type", param, string)
    if kind not in ("text", "json_object", "json_schema"):
        raise err.invalid_value(f"{param}.type", kind, ["text", "json_object", "json_schema"])
    if kind == "json_schema":
        schema = required(value, "json_schema", param, obj)
        required(schema, "name", f"{param}.json_schema", string)
        if schema.get("schema") is not None:
            obj(f"{param}.json_schema.schema", schema["schema"])


def check_json_mode_mentions_json(body: Mapping[str, Any]) -> None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_object":
        return
    if "json" not in _all_text(body["messages"]).lower():
        raise err.invalid(
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
            "'json_object'.",
            "messages",
        )


def _all_text(history: list[dict[str, Any]]) -> str:
    out: list[str] = []
    for message in history:
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return " ".join(out)


def check_logprobs(body: Mapping[str, Any]) -> None:
    if body.get("top_logprobs") is not None and not body.get("logprobs"):
        raise err.invalid(
            "Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used.",
            "top_logprobs",
        )
