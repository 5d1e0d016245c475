"""The Anthropic simulator's deterministic "model": what it answers, and how that answer streams.

Pure functions of a validated request, so the same request gets the same content and the same token
counts whether it is streamed or not. Tokens follow the OpenAI simulator's rule (`openai_content.tokens`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from tollway.simulators.openai_content import count_tokens, example_from_schema, split_arguments, tokens

JSON = dict[str, Any]
Event = tuple[str, JSON]
MESSAGE_OVERHEAD = 3  # tokens per message, so that structure costs something like it does upstream
TEXT_PIECE_TOKENS = 2  # tokens per streamed text_delta


@dataclass(slots=True)
class Plan:
    content: list[JSON]
    stop_reason: str
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int = field(init=False)

    def __post_init__(self) -> None:
        self.output_tokens = sum(_block_tokens(block) for block in self.content) or 1

    def usage(self) -> JSON:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": self.output_tokens,
        }


def _block_tokens(block: JSON) -> int:
    if block["type"] == "text":
        return count_tokens(block["text"])
    return count_tokens(block["name"]) + count_tokens(orjson.dumps(block["input"]).decode())


def _blocks(content: Any) -> list[JSON]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _block_text(block: JSON) -> str:
    kind = block.get("type")
    if kind == "text":
        return str(block["text"])
    if kind == "tool_use":
        return f"{block['name']} {orjson.dumps(block['input']).decode()}"
    if kind == "tool_result":
        return "".join(_block_text(inner) for inner in _blocks(block.get("content") or ""))
    if kind in ("image", "document"):
        return f"[{kind}]"
    return ""


def count_input_tokens(body: JSON) -> int:
    """Tokens of the prompt: system, every message's blocks, and the tool definitions."""
    system = body.get("system") or ""
    total = count_tokens(system if isinstance(system, str) else " ".join(b["text"] for b in system))
    for message in body["messages"]:
        text = " ".join(_block_text(block) for block in _blocks(message["content"]))
        total += MESSAGE_OVERHEAD + count_tokens(text)
    if body.get("tools"):
        total += count_tokens(orjson.dumps(body["tools"]).decode())
    return total


def _last_user_text(messages: list[JSON]) -> str:
    for message in reversed(messages):
        if message["role"] == "user":
            texts = [b["text"] for b in _blocks(message["content"]) if b.get("type") == "text"]
            if texts:
                return " ".join(texts)
    return ""


def _tool_results(messages: list[JSON]) -> list[str]:
    last = messages[-1]
    if last["role"] != "user":
        return []
    return [_block_text(b) for b in _blocks(last["content"]) if b.get("type") == "tool_result"]


def _pick_tools(body: JSON, answering_results: bool) -> list[JSON]:
    tools = [t for t in body.get("tools") or [] if t.get("type") in (None, "custom")]
    choice = body.get("tool_choice") or {"type": "auto"}
    if not tools or choice["type"] == "none":
        return []
    if choice["type"] == "tool":
        return [t for t in tools if t["name"] == choice["name"]][:1]
    if answering_results and choice["type"] != "any":
        return []
    text = _last_user_text(body["messages"]).lower()
    chosen = [t for t in tools if _mentioned(t["name"].lower(), text)]
    if not chosen and ("tool" in text or choice["type"] == "any"):
        chosen = tools[:1]
    return chosen[:1] if choice.get("disable_parallel_tool_use") else chosen


def _mentioned(name: str, text: str) -> bool:
    """A tool is wanted when the text names it, or asks about the weather and it is a weather tool."""
    return name in text or name.replace("_", " ") in text or ("weather" in name and "weather" in text)


def tool_use_id(body: JSON, index: int) -> str:
    seed = orjson.dumps(body["messages"], option=orjson.OPT_SORT_KEYS) + f"/{index}".encode()
    return "toolu_01" + hashlib.blake2b(seed, digest_size=11).hexdigest()


def plan_message(body: JSON) -> Plan:
    """The answer to a validated request, the same whether it is streamed or not."""
    results = _tool_results(body["messages"])
    tools = _pick_tools(body, answering_results=bool(results))
    input_tokens = count_input_tokens(body)
    if tools:
        names = ", ".join(tool["name"] for tool in tools)
        content: list[JSON] = [{"type": "text", "text": f"Calling {names}."}]
        for i, tool in enumerate(tools):
            arguments = example_from_schema(tool["input_schema"])
            arguments = arguments if isinstance(arguments, dict) else {}
            content.append(
                {"type": "tool_use", "id": tool_use_id(body, i), "name": tool["name"], "input": arguments}
            )
        return Plan(content, "tool_use", None, input_tokens)
    text = "Tool results: " + " | ".join(results) if results else f"Echo: {_last_user_text(body['messages'])}"
    reason, sequence = "end_turn", None
    hits = [(text.find(s), s) for s in body.get("stop_sequences") or [] if s and s in text]
    if hits:
        position, sequence = min(hits)
        text, reason = text[:position], "stop_sequence"
    pieces = tokens(text)
    if len(pieces) > body["max_tokens"]:
        text, reason, sequence = "".join(pieces[: body["max_tokens"]]), "max_tokens", None
    return Plan([{"type": "text", "text": text}] if text else [], reason, sequence, input_tokens)


def message_json(plan: Plan, message_id: str, model: str) -> JSON:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": plan.content,
        "stop_reason": plan.stop_reason,
        "stop_sequence": plan.stop_sequence,
        "usage": plan.usage(),
    }


def stream_events(plan: Plan, message_id: str, model: str) -> Iterator[Event]:
    """Anthropic's exact event order, with a ping after the first content_block_start."""
    start = {
        **message_json(plan, message_id, model),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    start["usage"] = {**plan.usage(), "output_tokens": 1}
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(plan.content):
        opening = {"type": "text", "text": ""} if block["type"] == "text" else {**block, "input": {}}
        yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": opening}
        if index == 0:
            yield "ping", {"type": "ping"}
        for delta in _deltas(block):
            yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    delta = {"stop_reason": plan.stop_reason, "stop_sequence": plan.stop_sequence}
    yield "message_delta", {"type": "message_delta", "delta": delta, "usage": plan.usage()}
    yield "message_stop", {"type": "message_stop"}


def _deltas(block: JSON) -> Iterator[JSON]:
    if block["type"] == "text":
        pieces = tokens(block["text"])
        for i in range(0, len(pieces), TEXT_PIECE_TOKENS):
            yield {"type": "text_delta", "text": "".join(pieces[i : i + TEXT_PIECE_TOKENS])}
        return
    # Like Anthropic: an empty fragment first, then the input JSON in several pieces.
    yield {"type": "input_json_delta", "partial_json": ""}
    for fragment in split_arguments(orjson.dumps(block["input"]).decode()):
        yield {"type": "input_json_delta", "partial_json": fragment}
