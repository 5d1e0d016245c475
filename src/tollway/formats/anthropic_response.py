"""Anthropic Messages responses <-> OpenAI chat completions: stop reasons, usage, ids and errors.

Usage, the one mapping that is easy to get wrong:

    Anthropic                      OpenAI                                    tollway Usage
    input_tokens                   (part of) prompt_tokens                   (part of) input_tokens
    cache_read_input_tokens        prompt_tokens_details.cached_tokens       cached_input_tokens
    cache_creation_input_tokens    prompt_tokens_details.cache_creation_tokens  cache_write_tokens
    output_tokens                  completion_tokens                         output_tokens

Anthropic's `input_tokens` counts only the uncached remainder of the prompt, while OpenAI's `prompt_tokens`
(and tollway's `Usage.input_tokens`, which follows it) counts the whole prompt. So
`prompt_tokens = input_tokens + cache_read_input_tokens + cache_creation_input_tokens`, and the way back
subtracts them again. `cache_creation_tokens` is a tollway extension: OpenAI has no cache-write count.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from tollway.errors import UpstreamStatus
from tollway.types import Usage

JSON = dict[str, Any]

# pause_turn (a server-tool loop paused) and model_context_window_exceeded have no OpenAI twin: the
# nearest meaning is "stopped normally" and "ran out of room".
STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

# Anthropic's error types and the HTTP status each comes with. 529 (overloaded) is not a status HTTP
# clients know; the gateway reports it as 503, keeping the type `overloaded_error`.
ERROR_STATUSES = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 503,
}
STATUS_REMAP = {529: 503}


def finish_reason(stop_reason: str | None) -> str | None:
    return None if stop_reason is None else STOP_TO_FINISH.get(stop_reason, "stop")


def stop_reason(finish: str | None) -> str | None:
    return None if finish is None else FINISH_TO_STOP.get(finish, "end_turn")


def chat_id(message_id: str) -> str:
    return "chatcmpl-" + message_id.removeprefix("msg_")


def message_id(completion_id: str) -> str:
    return "msg_" + completion_id.removeprefix("chatcmpl-")


def usage_from_anthropic(usage: JSON | None) -> Usage:
    """Anthropic `usage` -> tollway Usage; `input_tokens` there includes cache reads and writes."""
    usage = usage or {}
    cached = int(usage.get("cache_read_input_tokens") or 0)
    written = int(usage.get("cache_creation_input_tokens") or 0)
    return Usage(
        input_tokens=int(usage.get("input_tokens") or 0) + cached + written,
        cached_input_tokens=cached,
        cache_write_tokens=written,
        output_tokens=int(usage.get("output_tokens") or 0),
    )


def openai_usage(usage: JSON | None) -> JSON:
    """Anthropic `usage` -> OpenAI `usage` (prompt_tokens includes cached tokens)."""
    totals = usage_from_anthropic(usage)
    return {
        "prompt_tokens": totals.input_tokens,
        "completion_tokens": totals.output_tokens,
        "total_tokens": totals.total_tokens,
        "prompt_tokens_details": {
            "cached_tokens": totals.cached_input_tokens,
            "cache_creation_tokens": totals.cache_write_tokens,
        },
    }


def anthropic_usage(usage: JSON | None) -> JSON:
    """OpenAI `usage` -> Anthropic `usage` (input_tokens excludes cache reads and writes)."""
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0)
    written = int(details.get("cache_creation_tokens") or 0)
    prompt = int(usage.get("prompt_tokens") or 0)
    return {
        "input_tokens": max(0, prompt - cached - written),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "output_tokens": int(usage.get("completion_tokens") or 0),
    }


def tool_call(block: JSON) -> JSON:
    """An Anthropic tool_use block -> an OpenAI tool call (arguments as a JSON string)."""
    arguments = orjson.dumps(block.get("input") or {}).decode()
    return {
        "id": block["id"],
        "type": "function",
        "function": {"name": block["name"], "arguments": arguments},
    }


def message_to_chat_completion(message: JSON, model: str, *, created: int | None = None) -> JSON:
    """An Anthropic Message -> an OpenAI chat.completion. Thinking becomes `reasoning_content`."""
    content = message.get("content") or []
    text = "".join(block["text"] for block in content if block.get("type") == "text")
    thinking = "".join(block.get("thinking", "") for block in content if block.get("type") == "thinking")
    calls = [tool_call(block) for block in content if block.get("type") == "tool_use"]
    reply: JSON = {"role": "assistant", "content": text or (None if calls else ""), "refusal": None}
    if calls:
        reply["tool_calls"] = calls
    if thinking:
        reply["reasoning_content"] = thinking
    return {
        "id": chat_id(str(message.get("id") or "msg_")),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": finish_reason(message.get("stop_reason")),
            }
        ],
        "usage": openai_usage(message.get("usage")),
    }


def tool_use_block(call: JSON) -> JSON:
    """An OpenAI tool call -> an Anthropic tool_use block; unparsable arguments are kept as a string."""
    function = call.get("function") or {}
    raw = function.get("arguments") or "{}"
    try:
        arguments = orjson.loads(raw)
    except orjson.JSONDecodeError:
        arguments = {"arguments": raw}
    if not isinstance(arguments, dict):
        arguments = {"arguments": arguments}
    return {
        "type": "tool_use",
        "id": call.get("id") or "",
        "name": function.get("name") or "",
        "input": arguments,
    }


def chat_completion_to_message(completion: JSON, model: str) -> JSON:
    """An OpenAI chat.completion (first choice) -> an Anthropic Message."""
    choice = (completion.get("choices") or [{}])[0]
    reply = choice.get("message") or {}
    blocks: list[JSON] = []
    text = reply.get("content")
    if isinstance(text, list):
        text = "".join(part.get("text", "") for part in text if isinstance(part, dict))
    if text:
        blocks.append({"type": "text", "text": text})
    if reply.get("refusal"):
        blocks.append({"type": "text", "text": reply["refusal"]})
    blocks.extend(tool_use_block(call) for call in reply.get("tool_calls") or [])
    reason = "refusal" if reply.get("refusal") else stop_reason(choice.get("finish_reason"))
    return {
        "id": message_id(str(completion.get("id") or "chatcmpl-")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": reason,
        "stop_sequence": None,
        "usage": anthropic_usage(completion.get("usage")),
    }


def upstream_error(
    status: int, body: Any, *, backend: str, headers: dict[str, str] | None = None
) -> UpstreamStatus:
    """An Anthropic error answer (`{"type":"error","error":{"type","message"}}`) -> `UpstreamStatus`.

    A stream's `event: error` comes with HTTP 200; pass status 0 to take the status from the type.
    The upstream's message is kept verbatim (the error tree passes upstream statuses through faithfully);
    `backend` names where it came from.
    """
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    kind = error.get("type") if isinstance(error.get("type"), str) else None
    status = STATUS_REMAP.get(status, status) or ERROR_STATUSES.get(kind or "", 502)
    message = error.get("message") if isinstance(error.get("message"), str) else None
    return UpstreamStatus(
        message or f"Backend '{backend}' returned HTTP {status} without an error message.",
        backend=backend,
        upstream_status=status,
        upstream_type=kind,
        body=body if isinstance(body, dict) else None,
        headers=headers,
    )
