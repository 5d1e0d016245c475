"""Anthropic Messages requests <-> OpenAI chat requests (the canonical shape), as pure functions.

`messages_to_chat` serves the Anthropic surface (an Anthropic caller, any upstream); `chat_to_messages`
serves the Anthropic provider (any caller, an Anthropic upstream). Responses, usage and stop reasons
live in `anthropic_response`, streams in `anthropic_stream`; both are re-exported here.

Decisions where the two formats do not line up:
- Anthropic-only features with no OpenAI equivalent (thinking settings and blocks, server tools, cache
  control, container, ...) are dropped from the canonical body. They survive in `native_body`, which an
  Anthropic upstream receives untouched.
- `tool_result` blocks become `tool` messages placed before the rest of their user turn; `is_error`
  is kept by prefixing the content with "[tool error] ". Images inside a tool result cannot ride in an
  OpenAI tool message, so they follow in a user message.
- PDF documents become OpenAI `file` parts (base64 data URL); plain-text documents become text.
- OpenAI `response_format` json_schema -> Anthropic `output_config.format` (structured outputs);
  json_object -> the same with the schema `{"type": "object"}`. `n` > 1 and logprobs are refused.
- OpenAI temperature runs 0..2, Anthropic's 0..1: values above 1 are clamped to 1.
- OpenAI settings with no Anthropic equivalent that do not change what a caller may rely on (seed,
  penalties, logit_bias, store, stream_options, ...) are not sent.
"""

from __future__ import annotations

import re
from typing import Any

from tollway.errors import InvalidRequest
from tollway.formats.anthropic_response import (
    chat_completion_to_message,
    message_to_chat_completion,
    tool_call,
    tool_use_block,
    usage_from_anthropic,
)
from tollway.formats.anthropic_validate import validate_messages_request
from tollway.formats.chat_validate import check_chat_shapes

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "chat_completion_to_message",
    "chat_to_messages",
    "message_to_chat_completion",
    "messages_to_chat",
    "usage_from_anthropic",
    "validate_messages_request",
]

JSON = dict[str, Any]
DEFAULT_MAX_TOKENS = 4096
TOOL_ERROR_PREFIX = "[tool error] "

ANTHROPIC_TO_OPENAI_CHOICE = {"auto": "auto", "any": "required", "none": "none"}
OPENAI_TO_ANTHROPIC_CHOICE = {"auto": "auto", "required": "any", "none": "none"}
# Sampling settings with the same name and meaning on both sides. `top_k` is not part of OpenAI's API
# (which refuses it), so it is kept only on the way *to* Anthropic; an Anthropic caller's top_k reaches
# Anthropic upstreams through the untouched native body.
SHARED_SETTINGS = ("model", "temperature", "top_p")
TO_ANTHROPIC_SETTINGS = (*SHARED_SETTINGS, "top_k")
_DATA_URL = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)$", re.DOTALL)
_TOOL_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


# --- Anthropic request -> OpenAI request ------------------------------------------------------------


def messages_to_chat(body: Any) -> JSON:
    """An Anthropic Messages request -> an OpenAI chat request. Validates like Anthropic first."""
    validate_messages_request(body)
    messages: list[JSON] = []
    system = _system_text(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for message in body["messages"]:
        messages.extend(_to_openai_messages(message))
    chat: JSON = {name: body[name] for name in SHARED_SETTINGS if body.get(name) is not None}
    chat["messages"] = messages
    chat["max_tokens"] = body["max_tokens"]
    if body.get("stop_sequences"):
        chat["stop"] = list(body["stop_sequences"])
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        chat["user"] = user
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    chat.update(_openai_tools(body))
    chat.update(_openai_response_format(body.get("output_config")))
    return chat


def _system_text(system: Any) -> str:
    if isinstance(system, list):
        return "\n\n".join(block["text"] for block in system)
    return system or ""


def _to_openai_messages(message: JSON) -> list[JSON]:
    content = message["content"]
    if isinstance(content, str):
        return [{"role": message["role"], "content": content}]
    if message["role"] == "assistant":
        return [_assistant_message(content)]
    return _user_messages(content)


def _assistant_message(blocks: list[JSON]) -> JSON:
    text = "".join(block["text"] for block in blocks if block["type"] == "text")
    calls = [tool_call(block) for block in blocks if block["type"] == "tool_use"]
    # OpenAI wants content unless there are tool calls: thinking-only turns become "".
    message: JSON = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
    return message


def _user_messages(blocks: list[JSON]) -> list[JSON]:
    """Tool results first (OpenAI wants them right after the assistant turn), then the user's own parts."""
    messages: list[JSON] = []
    parts: list[JSON] = []
    for block in blocks:
        if block["type"] == "tool_result":
            tool_message, images = _tool_message(block)
            messages.append(tool_message)
            parts.extend(images)
        else:
            parts.extend(_openai_parts(block))
    if parts:
        only_text = len(parts) == 1 and parts[0]["type"] == "text"
        messages.append({"role": "user", "content": parts[0]["text"] if only_text else parts})
    return messages


def _tool_message(block: JSON) -> tuple[JSON, list[JSON]]:
    content = block.get("content")
    images: list[JSON] = []
    if isinstance(content, list):
        texts = []
        for item in content:
            if item.get("type") == "text":
                texts.append(item["text"])
            else:
                images.extend(_openai_parts(item))
        content = "\n".join(texts)
    text = content or ""
    if block.get("is_error"):
        text = TOOL_ERROR_PREFIX + text
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}, images


def _openai_parts(block: JSON) -> list[JSON]:
    kind = block["type"]
    if kind == "text":
        return [{"type": "text", "text": block["text"]}]
    if kind == "image":
        return [{"type": "image_url", "image_url": {"url": _source_url(block["source"])}}]
    if kind == "document":
        return [_document_part(block)]
    return []  # search results, container uploads: nothing an OpenAI upstream could read


def _source_url(source: JSON) -> str:
    if source["type"] == "base64":
        return f"data:{source.get('media_type', 'application/octet-stream')};base64,{source.get('data', '')}"
    if source["type"] == "url":
        return str(source.get("url", ""))
    raise InvalidRequest(
        f"Image source type '{source['type']}' cannot be sent to this model; use base64 or url."
    )


def _document_part(block: JSON) -> JSON:
    source = block["source"]
    if source["type"] == "text":
        return {"type": "text", "text": source.get("data", "")}
    if source["type"] == "content":
        inner = source.get("content")
        text = inner if isinstance(inner, str) else "".join(b.get("text", "") for b in inner or [])
        return {"type": "text", "text": text}
    file: JSON = (
        {"file_data": _source_url(source)}
        if source["type"] == "base64"
        else {"file_url": _source_url(source)}
    )
    file["filename"] = block.get("title") or "document.pdf"
    return {"type": "file", "file": file}


def _openai_tools(body: JSON) -> JSON:
    tools = [
        {
            "type": "function",
            "function": {
                "name": tool["name"],
                "description": tool.get("description", ""),
                "parameters": tool["input_schema"],
            },
        }
        for tool in body.get("tools") or []
        if tool.get("type") in (None, "custom")  # server tools run at Anthropic only
    ]
    if not tools:
        return {}
    out: JSON = {"tools": tools}
    choice = body.get("tool_choice")
    if choice:
        kind = choice["type"]
        out["tool_choice"] = (
            {"type": "function", "function": {"name": choice["name"]}}
            if kind == "tool"
            else ANTHROPIC_TO_OPENAI_CHOICE[kind]
        )
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    return out


def _openai_response_format(output_config: Any) -> JSON:
    fmt = (output_config or {}).get("format") if isinstance(output_config, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return {}
    schema = {"name": "output", "schema": fmt.get("schema") or {}, "strict": True}
    return {"response_format": {"type": "json_schema", "json_schema": schema}}


# --- OpenAI request -> Anthropic request ------------------------------------------------------------


def chat_to_messages(body: JSON, *, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> JSON:
    """An OpenAI chat request -> an Anthropic Messages request. Raises `InvalidRequest` where impossible."""
    check_chat_shapes(body)
    _refuse_unsupported(body)
    system: list[str] = []
    turns: list[JSON] = []
    for i, message in enumerate(body.get("messages") or []):
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text_of(message.get("content")))
            continue
        if role not in ("user", "assistant", "tool"):
            raise InvalidRequest(
                f"messages[{i}].role '{role}' cannot be sent to this model.", param="messages"
            )
        _append_turn(turns, *_anthropic_turn(message))
    out: JSON = {name: body[name] for name in TO_ANTHROPIC_SETTINGS if body.get(name) is not None}
    if "temperature" in out:
        out["temperature"] = min(float(out["temperature"]), 1.0)
    out["max_tokens"] = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    out["messages"] = turns
    if system:
        out["system"] = "\n\n".join(system)
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    if body.get("stream"):
        out["stream"] = True
    out.update(_anthropic_tools(body))
    out.update(_output_config(body.get("response_format")))
    return out


def _refuse_unsupported(body: JSON) -> None:
    if int(body.get("n") or 1) > 1:
        raise InvalidRequest("n: Anthropic models return one choice per request; set n to 1.", param="n")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise InvalidRequest("logprobs: not available from Anthropic models; remove it.", param="logprobs")
    if body.get("functions") or body.get("function_call"):
        raise InvalidRequest("functions: deprecated; use tools and tool_choice instead.", param="functions")


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def _append_turn(turns: list[JSON], role: str, blocks: list[JSON]) -> None:
    """Anthropic wants alternating turns: consecutive tool/user messages fold into one user turn."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _anthropic_turn(message: JSON) -> tuple[str, list[JSON]]:
    role = message["role"]
    if role == "tool":
        result = {
            "type": "tool_result",
            "tool_use_id": anthropic_tool_id(str(message.get("tool_call_id") or "")),
            "content": _text_of(message.get("content")),
        }
        return "user", [result]
    blocks = _anthropic_blocks(message.get("content"))
    if role == "assistant":
        for call in message.get("tool_calls") or []:
            block = tool_use_block(call)
            block["id"] = anthropic_tool_id(block["id"])
            blocks.append(block)
    return role, blocks


def anthropic_tool_id(tool_call_id: str) -> str:
    """Anthropic tool ids must match ^[a-zA-Z0-9_-]+$; OpenAI-compatible servers are less strict."""
    return _TOOL_ID_UNSAFE.sub("_", tool_call_id) or "toolu_missing"


def _anthropic_blocks(content: Any) -> list[JSON]:
    if content is None or content == "":
        return []  # Anthropic refuses empty text blocks
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = [_anthropic_block(part) for part in content]
    return [block for block in blocks if block is not None]


def _anthropic_block(part: JSON) -> JSON | None:
    kind = part.get("type")
    if kind in ("text", "refusal"):
        text = part.get("text") or part.get("refusal") or ""
        return {"type": "text", "text": text} if text else None
    if kind == "image_url":
        url = (part.get("image_url") or {}).get("url", "")
        return {"type": "image", "source": _anthropic_source(url)}
    if kind == "file":
        file = part.get("file") or {}
        if not file.get("file_data"):
            raise InvalidRequest("file parts need file_data (a base64 data URL); file ids are not supported.")
        block: JSON = {"type": "document", "source": _anthropic_source(file["file_data"])}
        if file.get("filename"):
            block["title"] = file["filename"]
        return block
    raise InvalidRequest(f"Content part type '{kind}' cannot be sent to this model.", param="messages")


def _anthropic_source(url: str) -> JSON:
    match = _DATA_URL.match(url)
    if match:
        return {"type": "base64", "media_type": match["media"], "data": match["data"]}
    if url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    raise InvalidRequest("image_url.url must be an http(s) URL or a base64 data URL.", param="messages")


def _anthropic_tools(body: JSON) -> JSON:
    tools = [
        {
            "name": tool["function"]["name"],
            "description": tool["function"].get("description", ""),
            "input_schema": tool["function"].get("parameters") or {"type": "object", "properties": {}},
        }
        for tool in body.get("tools") or []
        if tool.get("type") == "function"
    ]
    out: JSON = {"tools": tools} if tools else {}
    choice = _anthropic_tool_choice(body.get("tool_choice"))
    if body.get("parallel_tool_calls") is False and tools:
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if choice and tools:
        out["tool_choice"] = choice
    return out


def _anthropic_tool_choice(choice: Any) -> JSON | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in OPENAI_TO_ANTHROPIC_CHOICE:
            raise InvalidRequest(
                f"tool_choice '{choice}' is not one of auto, required, none.", param="tool_choice"
            )
        return {"type": OPENAI_TO_ANTHROPIC_CHOICE[choice]}
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    if not name:
        raise InvalidRequest("tool_choice.function.name is required.", param="tool_choice")
    return {"type": "tool", "name": name}


def _output_config(response_format: Any) -> JSON:
    if not isinstance(response_format, dict) or response_format.get("type") in (None, "text"):
        return {}
    kind = response_format["type"]
    if kind == "json_object":
        return {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}}
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequest("response_format.json_schema.schema is required.", param="response_format")
        return {"output_config": {"format": {"type": "json_schema", "schema": schema}}}
    raise InvalidRequest(
        f"response_format type '{kind}' is not supported by this model.", param="response_format"
    )
