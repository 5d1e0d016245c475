"""OpenAI Responses API create requests -> OpenAI Chat Completions requests (the canonical shape).

The Responses surface is served by translating to chat and back: this module owns the way in
(`responses_to_chat`); `responses_output` owns the way out (`chat_to_response`, `response_to_history`)
and is re-exported here so callers import one module.

What maps where:

    Responses                              Chat Completions
    instructions                           first message, role system
    input (string)                         one user message
    input message items                    messages (developer -> system: every chat upstream knows it)
    function_call items                    assistant tool_calls (merged into the preceding assistant message)
    function_call_output items             tool messages
    tools (function)                       tools [{type: function, function: {...}}]
    text.format                            response_format
    max_output_tokens                      max_completion_tokens
    reasoning.effort                       reasoning_effort
    stream                                 stream + stream_options.include_usage (usage is billed from it)

`store`, `metadata`, `previous_response_id` and `truncation` are the gateway's business (kept in the response
object and the response store), not the upstream's: chat's own `store`/`metadata` mean something else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tollway.errors import InvalidRequest
from tollway.formats.responses_output import chat_to_response, response_envelope, response_to_history
from tollway.formats.responses_params import RENAMED_PARAMS, check_params

__all__ = ["chat_to_response", "response_envelope", "response_to_history", "responses_to_chat"]

JSON = dict[str, Any]

# Chat knows system, user, assistant; developer is system for every upstream that is not OpenAI itself.
MESSAGE_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
TOOL_CHOICE_MODES = {"none", "auto", "required"}
LOGPROBS_INCLUDE = "message.output_text.logprobs"


def responses_to_chat(body: JSON, history: list[JSON] | None = None) -> JSON:
    """A Responses create request as a chat completions request.

    `history` holds the chat messages of the conversation `previous_response_id` names (the caller resolves
    it); they come after the instructions, which OpenAI never carries over from a previous response.
    """
    check_params(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model")
    messages = (
        _instructions(body.get("instructions")) + list(history or []) + _input_messages(body.get("input"))
    )
    if not messages:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input")
    chat: JSON = {"model": model, "messages": messages}
    chat.update({dst: body[src] for src, dst in RENAMED_PARAMS.items() if body.get(src) is not None})
    chat.update(_tool_params(body))
    chat.update(_text_params(body.get("text")))
    chat.update(_reasoning_params(body.get("reasoning")))
    chat.update(_logprob_params(body))
    if body.get("stream"):
        chat.update(stream=True, stream_options={"include_usage": True})
    return chat


def _instructions(instructions: Any) -> list[JSON]:
    if instructions is None or instructions == "":
        return []
    if not isinstance(instructions, str):
        raise InvalidRequest("Invalid type for 'instructions': expected a string.", param="instructions")
    return [{"role": "system", "content": instructions}]


# --- input items -----------------------------------------------------------------------------------------


def _input_messages(value: Any) -> list[JSON]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise InvalidRequest(
            "Invalid type for 'input': expected a string or an array of items.", param="input"
        )
    messages: list[JSON] = []
    for index, item in enumerate(value):
        path = f"input[{index}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"Invalid type for '{path}': expected an object.", param=path)
        kind = item.get("type", "message")
        convert = ITEM_CONVERTERS.get(kind) if isinstance(kind, str) else None  # a list is not hashable
        if convert is None:
            raise InvalidRequest(
                f"Input items of type '{kind}' are not supported by this gateway; send message, "
                "function_call and function_call_output items.",
                param=f"{path}.type",
            )
        convert(item, path, messages)
    return messages


def _message_item(item: JSON, path: str, messages: list[JSON]) -> None:
    sent = item.get("role")
    role = MESSAGE_ROLES.get(sent) if isinstance(sent, str) else None  # a list or object is not hashable
    if role is None:
        raise InvalidRequest(
            f"Invalid value for '{path}.role': expected one of user, assistant, system or developer.",
            param=f"{path}.role",
        )
    content = item.get("content")
    if isinstance(content, str):
        messages.append({"role": role, "content": content})
        return
    if not isinstance(content, list):
        raise InvalidRequest(f"Missing required parameter: '{path}.content'.", param=f"{path}.content")
    parts = [_content_part(part, f"{path}.content[{i}]") for i, part in enumerate(content)]
    messages.append(_assistant_message(parts) if role == "assistant" else {"role": role, "content": parts})


def _assistant_message(parts: list[JSON]) -> JSON:
    # Assistant content as one string: older chat servers accept nothing else for assistant messages.
    text = "".join(part["text"] for part in parts if part["type"] == "text")
    refusal = "".join(part["refusal"] for part in parts if part["type"] == "refusal")
    message: JSON = {"role": "assistant", "content": text or None}
    if refusal:
        message["refusal"] = refusal
    return message


def _function_call_item(item: JSON, path: str, messages: list[JSON]) -> None:
    call = {
        "id": _required_str(item, "call_id", path),
        "type": "function",
        "function": {"name": _required_str(item, "name", path), "arguments": item.get("arguments") or ""},
    }
    # A model turn is one assistant message in chat: its text and all its calls travel together.
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _function_call_output_item(item: JSON, path: str, messages: list[JSON]) -> None:
    output = item.get("output")
    if isinstance(output, list):
        parts = [_content_part(part, f"{path}.output[{i}]") for i, part in enumerate(output)]
        if any(part["type"] != "text" for part in parts):
            raise InvalidRequest(
                f"Only text is supported in '{path}.output' by this gateway.", param=f"{path}.output"
            )
        output = parts
    elif not isinstance(output, str):
        raise InvalidRequest(f"Missing required parameter: '{path}.output'.", param=f"{path}.output")
    messages.append({"role": "tool", "tool_call_id": _required_str(item, "call_id", path), "content": output})


def _reasoning_item(item: JSON, path: str, messages: list[JSON]) -> None:
    """Reasoning items echoed back by stateless clients: chat has no place for them, so they are dropped."""


ITEM_CONVERTERS: dict[str, Callable[[JSON, str, list[JSON]], None]] = {
    "message": _message_item,
    "function_call": _function_call_item,
    "function_call_output": _function_call_output_item,
    "reasoning": _reasoning_item,
}


def _required_str(item: JSON, name: str, path: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"Missing required parameter: '{path}.{name}'.", param=f"{path}.{name}")
    return value


# --- content parts ---------------------------------------------------------------------------------------


def _content_part(part: Any, path: str) -> JSON:
    if not isinstance(part, dict):
        raise InvalidRequest(f"Invalid type for '{path}': expected an object.", param=path)
    kind = part.get("type")
    convert = PART_CONVERTERS.get(kind) if isinstance(kind, str) else None
    if convert is None:
        raise InvalidRequest(
            f"Content parts of type '{kind}' are not supported by this gateway; send input_text, input_image "
            "(image_url) or input_file (file_data).",
            param=f"{path}.type",
        )
    return convert(part, path)


def _text_part(part: JSON, path: str) -> JSON:
    text = part.get("text")
    if not isinstance(text, str):
        raise InvalidRequest(f"Missing required parameter: '{path}.text'.", param=f"{path}.text")
    return {"type": "text", "text": text}


def _refusal_part(part: JSON, path: str) -> JSON:
    return {"type": "refusal", "refusal": str(part.get("refusal") or "")}


def _image_part(part: JSON, path: str) -> JSON:
    url = part.get("image_url")
    if not isinstance(url, str) or not url:
        # file_id names a file in OpenAI's file store, which the upstreams behind the gateway cannot read.
        raise InvalidRequest(
            f"'{path}' must carry an 'image_url' (an https or data: URL); images by 'file_id' are not "
            "supported.",
            param=f"{path}.file_id" if part.get("file_id") else f"{path}.image_url",
        )
    image: JSON = {"url": url}
    if part.get("detail"):
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _file_part(part: JSON, path: str) -> JSON:
    data = part.get("file_data")
    if not isinstance(data, str) or not data:
        raise InvalidRequest(
            f"'{path}' must carry 'file_data' (a base64 data: URL); files by 'file_id' or 'file_url' are not "
            "supported.",
            param=f"{path}.file_data",
        )
    file: JSON = {"file_data": data}
    if part.get("filename"):
        file["filename"] = part["filename"]
    return {"type": "file", "file": file}


PART_CONVERTERS: dict[str, Callable[[JSON, str], JSON]] = {
    "input_text": _text_part,
    "output_text": _text_part,
    "text": _text_part,
    "refusal": _refusal_part,
    "input_image": _image_part,
    "input_file": _file_part,
}


# --- tools, output format, reasoning ---------------------------------------------------------------------


def _tool_params(body: JSON) -> JSON:
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise InvalidRequest("Invalid type for 'tools': expected an array.", param="tools")
    params: JSON = {}
    if tools:
        params["tools"] = [_chat_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
        # Chat refuses parallel_tool_calls without tools, so it only travels with them.
        if body.get("parallel_tool_calls") is not None:
            params["parallel_tool_calls"] = body["parallel_tool_calls"]
    if body.get("tool_choice") is not None:
        params["tool_choice"] = _chat_tool_choice(body["tool_choice"])
    return params


def _chat_tool(tool: Any, path: str) -> JSON:
    if not isinstance(tool, dict):
        raise InvalidRequest(f"Invalid type for '{path}': expected an object.", param=path)
    if tool.get("type") != "function":
        raise InvalidRequest(
            f"The tool type '{tool.get('type')}' is not supported by this gateway; only function tools are.",
            param=f"{path}.type",
        )
    function: JSON = {"name": _required_str(tool, "name", path)}
    function.update(
        {key: tool[key] for key in ("description", "parameters", "strict") if tool.get(key) is not None}
    )
    return {"type": "function", "function": function}


def _chat_tool_choice(choice: Any) -> Any:
    if isinstance(choice, str) and choice in TOOL_CHOICE_MODES:
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        tools = [_chat_tool_choice(tool) for tool in choice.get("tools") or []]
        return {
            "type": "allowed_tools",
            "allowed_tools": {"mode": choice.get("mode", "auto"), "tools": tools},
        }
    raise InvalidRequest(
        "Invalid value for 'tool_choice': expected none, auto, required, a function "
        '({"type": "function", "name": ...}) or allowed_tools; built-in tools are not supported.',
        param="tool_choice",
    )


def _text_params(text: Any) -> JSON:
    if not text:
        return {}
    if not isinstance(text, dict):
        raise InvalidRequest("Invalid type for 'text': expected an object.", param="text")
    params: JSON = {}
    if text.get("verbosity") is not None:
        params["verbosity"] = text["verbosity"]
    fmt = text.get("format")
    if fmt:
        params["response_format"] = _response_format(fmt)
    return params


def _response_format(fmt: Any) -> JSON:
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind != "json_schema":
        raise InvalidRequest(
            "Invalid value for 'text.format.type': expected text, json_object or json_schema.",
            param="text.format.type",
        )
    for name in ("name", "schema"):
        if fmt.get(name) is None:
            raise InvalidRequest(
                f"Missing required parameter: 'text.format.{name}'.", param=f"text.format.{name}"
            )
    schema = {
        key: fmt[key] for key in ("name", "description", "schema", "strict") if fmt.get(key) is not None
    }
    return {"type": "json_schema", "json_schema": schema}


def _reasoning_params(reasoning: Any) -> JSON:
    if not isinstance(reasoning, dict) or reasoning.get("effort") is None:
        return {}
    return {"reasoning_effort": reasoning["effort"]}


def _logprob_params(body: JSON) -> JSON:
    top = body.get("top_logprobs")
    wanted = LOGPROBS_INCLUDE in (body.get("include") or []) or bool(top)
    if not wanted:
        return {}
    return {"logprobs": True, "top_logprobs": top} if top else {"logprobs": True}
