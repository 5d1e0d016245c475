"""The simulator's chat completions: decide the answer once, then render it whole or as stream chunks.

``plan_chat`` turns a validated request into a :class:`ChatPlan`; ``chat_response`` and ``chat_events``
render that same plan, which is why streamed and non-streamed answers (and their usage) always agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tollway.simulators import openai_content as content


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(slots=True)
class ChatPlan:
    """Everything a chat answer is made of; every one of the ``n`` choices carries the same answer."""

    id: str
    created: int
    model: str
    text: str | None
    tool_calls: list[ToolCall]
    finish_reason: str
    n: int
    prompt_tokens: int
    top_logprobs: int | None  # None: logprobs not requested
    system_fingerprint: str
    service_tier: str
    stream_chunks: int | None = None
    include_usage: bool = False
    pieces: list[str] = field(default_factory=list)

    @property
    def completion_tokens(self) -> int:
        per_choice = content.count_tokens(self.text or "") + sum(
            content.count_tokens(c.name) + content.count_tokens(c.arguments) for c in self.tool_calls
        )
        return per_choice * self.n

    def usage(self) -> dict[str, Any]:
        completion = self.completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


def plan_chat(body: dict[str, Any], *, completion_id: str, created: int, fingerprint: str) -> ChatPlan:
    messages: list[dict[str, Any]] = body["messages"]
    tools = body.get("tools") or []
    parallel = body.get("parallel_tool_calls") is not False
    chosen = content.pick_tools(tools, body.get("tool_choice", "auto"), messages, parallel)
    calls = [
        ToolCall(
            content.tool_call_id(f"{completion_id}:{len(messages)}", i),
            t["function"]["name"],
            content.tool_arguments(t),
        )
        for i, t in enumerate(chosen)
    ]
    text: str | None = None
    finish = "tool_calls" if calls else "stop"
    if not calls:
        text, finish = _answer_text(body, messages)
    logprobs = body.get("logprobs")
    options = body.get("stream_options") or {}
    return ChatPlan(
        id=completion_id,
        created=created,
        model=body["model"],
        text=text,
        tool_calls=calls,
        finish_reason=finish,
        n=body.get("n") or 1,
        prompt_tokens=content.prompt_tokens_for_messages(messages, tools or None),
        top_logprobs=(body.get("top_logprobs") or 0) if logprobs else None,
        system_fingerprint=fingerprint,
        service_tier=_served_tier(body.get("service_tier")),
        include_usage=bool(options.get("include_usage")),
    )


def _answer_text(body: dict[str, Any], messages: list[dict[str, Any]]) -> tuple[str, str]:
    fmt = body.get("response_format") or {}
    if fmt.get("type") in ("json_object", "json_schema") and messages[-1].get("role") != "tool":
        text = content.json_reply(fmt, messages)
    else:
        text = content.echo_reply(messages)
    text, stopped = content.apply_stop(text, body.get("stop"))
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    text, cut = content.truncate(text, limit)
    return text, "length" if cut and not stopped else "stop"


def _served_tier(requested: str | None) -> str:
    return requested if requested in ("flex", "scale", "priority") else "default"


def _base(plan: ChatPlan, obj: str) -> dict[str, Any]:
    return {
        "id": plan.id,
        "object": obj,
        "created": plan.created,
        "model": plan.model,
        "service_tier": plan.service_tier,
        "system_fingerprint": plan.system_fingerprint,
    }


def chat_response(plan: ChatPlan) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": plan.text, "refusal": None, "annotations": []}
    if plan.tool_calls:
        message["tool_calls"] = [c.wire() for c in plan.tool_calls]
    logprobs = None
    if plan.top_logprobs is not None:
        logprobs = {
            "content": content.chat_logprobs(content.tokens(plan.text or ""), plan.top_logprobs),
            "refusal": None,
        }
    choices = [
        {"index": i, "message": message, "logprobs": logprobs, "finish_reason": plan.finish_reason}
        for i in range(plan.n)
    ]
    return {**_base(plan, "chat.completion"), "choices": choices, "usage": plan.usage()}


def chat_events(plan: ChatPlan) -> Iterator[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a stream, in order, ending with the usage chunk if asked."""
    base = _base(plan, "chat.completion.chunk")
    if plan.include_usage:
        base["usage"] = None
    for index in range(plan.n):
        for delta, logprobs in _choice_deltas(plan):
            yield {
                **base,
                "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": None}],
            }
        yield {
            **base,
            "choices": [{"index": index, "delta": {}, "logprobs": None, "finish_reason": plan.finish_reason}],
        }
    if plan.include_usage:
        yield {**base, "choices": [], "usage": plan.usage()}


def _choice_deltas(plan: ChatPlan) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    if plan.tool_calls:
        yield from ((delta, None) for delta in _tool_deltas(plan.tool_calls))
        return
    yield {"role": "assistant", "content": "", "refusal": None}, None
    offset = 0
    for piece in content.split_chunks(plan.text or "", plan.stream_chunks):
        logprobs = None
        if plan.top_logprobs is not None:
            pieces = content.tokens(piece)
            logprobs = {"content": content.chat_logprobs(pieces, plan.top_logprobs, offset), "refusal": None}
            offset += len(pieces)
        yield {"content": piece}, logprobs


def _tool_deltas(calls: list[ToolCall]) -> Iterator[dict[str, Any]]:
    # OpenAI opens each call with its id and name and empty arguments, then streams the arguments.
    for index, call in enumerate(calls):
        head = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        if index == 0:
            yield {"role": "assistant", "content": None, "tool_calls": [head], "refusal": None}
        else:
            yield {"tool_calls": [head]}
        for fragment in content.split_arguments(call.arguments):
            yield {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
