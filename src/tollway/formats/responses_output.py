"""OpenAI chat completions -> Responses API `response` objects, and back to chat history.

A response object echoes the request's parameters (with the API's defaults filled in) around the output
items the model produced:

    chat completion                          response
    message.content                          message item, output_text part (logprobs from choice.logprobs)
    message.refusal                          message item, refusal part
    message.tool_calls[i]                    function_call item (call_id = the chat tool call id)
    finish_reason length / content_filter    status incomplete, incomplete_details.reason
    usage.prompt_tokens(_details)            usage.input_tokens(_details.cached_tokens)
    usage.completion_tokens(_details)        usage.output_tokens(_details.reasoning_tokens)

Item ids derive from the response id and the item's position, so a streamed and a non-streamed translation
of the same completion name their items alike.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

# finish_reason -> (response status, incomplete_details)
FINISH_STATUS: dict[str | None, tuple[str, JSON | None]] = {
    "length": ("incomplete", {"reason": "max_output_tokens"}),
    "content_filter": ("incomplete", {"reason": "content_filter"}),
}
COMPLETED: tuple[str, JSON | None] = ("completed", None)

# Request parameters echoed with the API's default when the caller left them out.
ECHO_DEFAULTS: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "max_tool_calls": None,
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "service_tier": "auto",
    "store": True,
    "temperature": 1.0,
    "tool_choice": "auto",
    "top_logprobs": 0,
    "top_p": 1.0,
    "truncation": "disabled",
    "user": None,
}
# Echoed only when the caller sent them: the API leaves them out otherwise.
ECHO_IF_SENT = ("safety_identifier", "prompt_cache_key", "prompt_cache_retention")


def item_id(prefix: str, response_id: str, output_index: int) -> str:
    """The id of output item `output_index` of a response (`msg_...`, `fc_...`)."""
    return f"{prefix}_{response_id.removeprefix('resp_')}_{output_index}"


def response_envelope(request: JSON, response_id: str, created_at: int, *, model: str, status: str) -> JSON:
    """A response object, no output nor usage: what `response.created` carries, the frame of the rest."""
    reasoning = request.get("reasoning") or {}
    text = request.get("text") or {}
    envelope: JSON = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": [],
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "text": {"format": text.get("format") or {"type": "text"}, **_verbosity(text)},
        "tools": [echo_tool(tool) for tool in request.get("tools") or []],
        "usage": None,
        "metadata": request.get("metadata") or {},
    }
    for name, default in ECHO_DEFAULTS.items():
        value = request.get(name)
        envelope[name] = default if value is None else value
    envelope.update({name: request[name] for name in ECHO_IF_SENT if request.get(name) is not None})
    return envelope


def _verbosity(text: JSON) -> JSON:
    return {"verbosity": text["verbosity"]} if text.get("verbosity") is not None else {}


def echo_tool(tool: JSON) -> JSON:
    # strict is echoed as sent: the gateway forwards the caller's choice and claims no default of its own.
    return {
        "type": "function",
        "name": tool.get("name"),
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict"),
    }


def chat_to_response(
    completion: JSON, request: JSON, response_id: str, created_at: int, *, completed_at: int | None = None
) -> JSON:
    """A chat completion as the `response` object answering the Responses request `request`."""
    choice = (completion.get("choices") or [{}])[0]
    status, incomplete = FINISH_STATUS.get(choice.get("finish_reason"), COMPLETED)
    model = completion.get("model") or request.get("model") or ""
    response = response_envelope(request, response_id, created_at, model=model, status=status)
    response.update(
        completed_at=(completed_at or created_at) if status == "completed" else None,
        incomplete_details=incomplete,
        output=output_items(choice, response_id, "completed" if status == "completed" else "incomplete"),
        usage=response_usage(completion.get("usage")),
    )
    if completion.get("service_tier"):
        response["service_tier"] = completion["service_tier"]
    return response


def output_items(choice: JSON, response_id: str, item_status: str) -> list[JSON]:
    """The output items of a chat choice: its message (text, refusal) first, then its tool calls."""
    message = choice.get("message") or {}
    items: list[JSON] = []
    parts = message_parts(message.get("content"), message.get("refusal"), choice.get("logprobs"))
    if parts:
        items.append(message_item(item_id("msg", response_id, 0), parts, item_status))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        item = function_call_item(item_id("fc", response_id, len(items)), call.get("id") or "", function)
        items.append({**item, "status": item_status})
    return items


def message_parts(content: Any, refusal: Any, logprobs: JSON | None = None) -> list[JSON]:
    parts: list[JSON] = []
    if isinstance(content, list):  # some servers answer with text parts rather than a string
        content = "".join(part.get("text") or "" for part in content if isinstance(part, dict))
    if content:
        parts.append(output_text_part(content, (logprobs or {}).get("content") or []))
    if refusal:
        parts.append({"type": "refusal", "refusal": refusal})
    return parts


def output_text_part(text: str, logprobs: list[JSON] | None = None) -> JSON:
    return {"type": "output_text", "annotations": [], "logprobs": logprobs or [], "text": text}


def message_item(item_id: str, content: list[JSON], status: str) -> JSON:
    return {"id": item_id, "type": "message", "status": status, "content": content, "role": "assistant"}


def function_call_item(item_id: str, call_id: str, function: JSON) -> JSON:
    return {
        "id": item_id,
        "type": "function_call",
        "status": "completed",
        "arguments": function.get("arguments") or "",
        "call_id": call_id,
        "name": function.get("name") or "",
    }


def response_usage(usage: JSON | None) -> JSON | None:
    if not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": int(prompt_details.get("cached_tokens") or 0),
            # OpenAI chat has no cache-write count; tollway's anthropic translation calls it this.
            "cache_write_tokens": int(prompt_details.get("cache_creation_tokens") or 0),
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)},
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }


def response_to_history(request_messages: list[JSON], response: JSON) -> list[JSON]:
    """The conversation so far as chat messages, to continue from with `previous_response_id`.

    `request_messages` are the chat messages `responses_to_chat` built for the request; the instructions
    message it puts first is left out, since OpenAI does not carry instructions over to the next response.
    """
    messages = list(request_messages[1:] if response.get("instructions") else request_messages)
    reply = assistant_message(response.get("output") or [])
    return [*messages, reply] if reply else messages


def assistant_message(output: list[JSON]) -> JSON | None:
    """The output items of a response as one chat assistant message (None when there is no output)."""
    texts: list[str] = []
    refusals: list[str] = []
    calls: list[JSON] = []
    for item in output:
        if item.get("type") == "message":
            parts = item.get("content") or []
            texts += [part.get("text") or "" for part in parts if _is(part, "output_text")]
            refusals += [part.get("refusal") or "" for part in parts if _is(part, "refusal")]
        elif item.get("type") == "function_call":
            function = {"name": item.get("name"), "arguments": item.get("arguments")}
            calls.append({"id": item.get("call_id"), "type": "function", "function": function})
    if not (texts or refusals or calls):
        return None
    message: JSON = {"role": "assistant", "content": "".join(texts) or None}
    if refusals:
        message["refusal"] = "".join(refusals)
    if calls:
        message["tool_calls"] = calls
    return message


def _is(part: Any, kind: str) -> bool:
    return isinstance(part, dict) and part.get("type") == kind
