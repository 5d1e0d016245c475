"""Stateful, pure stream translators between Anthropic SSE events and OpenAI chat.completion.chunks.

`AnthropicToChatChunks` serves the Anthropic provider (Anthropic upstream, canonical chunks out);
`ChatChunksToAnthropic` serves the Anthropic surface (canonical chunks in, Anthropic events out). Neither
does I/O: feed them parsed events or chunks, write what they return.

The Anthropic event order both sides honour:
message_start, then per content block content_block_start / content_block_delta* / content_block_stop
(a `ping` right after the first content_block_start, as Anthropic sends it), then message_delta
(stop_reason, stop_sequence, cumulative usage) and message_stop.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from tollway.formats.anthropic_response import (
    anthropic_usage,
    chat_id,
    finish_reason,
    message_id,
    openai_usage,
    stop_reason,
    upstream_error,
    usage_from_anthropic,
)
from tollway.types import Usage

JSON = dict[str, Any]
Event = tuple[str, JSON]
USAGE_FIELDS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens")


def sse_event(name: str, data: JSON) -> bytes:
    """One Anthropic-framed SSE event: `event: <name>` and `data: <json>`, then a blank line."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def chunk_bytes(chunk: JSON) -> bytes:
    """One OpenAI-framed SSE event: `data: <json>` and a blank line."""
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


class AnthropicToChatChunks:
    """Anthropic stream events -> OpenAI chat.completion.chunk dicts, ending with a usage chunk."""

    def __init__(self, model: str | None = None, *, backend: str = "anthropic", created: int | None = None):
        self.model = model
        self.backend = backend
        self.created = int(time.time()) if created is None else created
        self.id = "chatcmpl-"
        self.anthropic_usage: JSON = {}
        self.stop_reason: str | None = None
        self.finished = False
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool_calls index

    @property
    def usage(self) -> Usage:
        return usage_from_anthropic(self.anthropic_usage)

    def feed(self, event: str, data: JSON) -> list[JSON]:
        """Translates one event (its name and parsed data); raises `UpstreamStatus` on an error event."""
        if event == "error" or data.get("type") == "error":
            raise upstream_error(0, data, backend=self.backend)
        handler = self._HANDLERS.get(data.get("type") or event)
        return handler(self, data) if handler else []

    def _chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model or "",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def _message_start(self, data: JSON) -> list[JSON]:
        message = data.get("message") or {}
        self.id = chat_id(str(message.get("id") or "msg_"))
        self.model = self.model or message.get("model")
        self._merge_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, data: JSON) -> list[JSON]:
        block = data.get("content_block") or {}
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if block.get("type") != "tool_use":
            return []
        index = len(self._tool_index)
        self._tool_index[int(data.get("index", 0))] = index
        call = {
            "index": index,
            "id": block.get("id", ""),
            "type": "function",
            "function": {"name": block.get("name", ""), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, data: JSON) -> list[JSON]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        if kind == "input_json_delta" and delta.get("partial_json"):
            index = self._tool_index.get(int(data.get("index", 0)))
            if index is not None:
                call = {"index": index, "function": {"arguments": delta["partial_json"]}}
                return [self._chunk({"tool_calls": [call]})]
        return []  # signatures, citations, empty fragments: nothing an OpenAI client can use

    def _message_delta(self, data: JSON) -> list[JSON]:
        self._merge_usage(data.get("usage"))
        reason = (data.get("delta") or {}).get("stop_reason")
        if reason is None:
            return []
        self.stop_reason = reason
        return [self._chunk({}, finish_reason(reason))]

    def _message_stop(self, data: JSON) -> list[JSON]:
        self.finished = True
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = openai_usage(self.anthropic_usage)
        return [chunk]

    def _merge_usage(self, usage: JSON | None) -> None:
        # message_delta counts are cumulative: they replace, and absent ones keep message_start's value.
        usage = usage or {}
        for name in USAGE_FIELDS:
            if usage.get(name) is not None:
                self.anthropic_usage[name] = usage[name]

    _HANDLERS: ClassVar[dict[str, Callable[[AnthropicToChatChunks, JSON], list[JSON]]]] = {
        "message_start": _message_start,
        "content_block_start": _block_start,
        "content_block_delta": _block_delta,
        "message_delta": _message_delta,
        "message_stop": _message_stop,
    }


@dataclass(slots=True)
class _Block:
    index: int
    kind: str  # "text" or "tool_use"


@dataclass
class ChatChunksToAnthropic:
    """OpenAI chat.completion.chunk dicts -> Anthropic (event name, data) pairs, in Anthropic's order.

    Call `feed` per chunk and `finish` once the upstream stream ended: message_delta carries the usage,
    which an OpenAI stream reports only in its last chunk, so it is emitted by `finish`.
    """

    model: str = ""  # empty: the model named by the first chunk
    input_tokens: int = 0  # an estimate for message_start; the real count goes out in message_delta
    message_id: str | None = None
    stop_reason: str | None = None
    openai_usage: JSON | None = None
    _started: bool = False
    _finished: bool = False
    _next_index: int = 0
    _open: _Block | None = None
    _pinged: bool = False
    _tools: dict[int, int] = field(default_factory=dict)  # OpenAI tool_calls index -> block index

    @property
    def usage(self) -> Usage:
        return Usage.from_openai(self.openai_usage)

    def feed(self, chunk: JSON) -> list[Event]:
        events = self._start(chunk)
        if chunk.get("usage"):
            self.openai_usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue  # Anthropic has one choice; n > 1 is refused before the call
            delta = choice.get("delta") or {}
            if delta.get("content"):
                events += self._text(delta["content"])
            for call in delta.get("tool_calls") or []:
                events += self._tool_call(call)
            if choice.get("finish_reason"):
                self.stop_reason = stop_reason(choice["finish_reason"])
                events += self._close()
        return events

    def finish(self) -> list[Event]:
        """The closing events: any open block's stop, message_delta with usage, message_stop."""
        if self._finished:
            return []
        self._finished = True
        events = self._start({}) + self._close()
        usage = anthropic_usage(self.openai_usage) if self.openai_usage else {"output_tokens": 0}
        delta = {"stop_reason": self.stop_reason or "end_turn", "stop_sequence": None}
        events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    def _start(self, chunk: JSON) -> list[Event]:
        if self._started:
            return []
        self._started = True
        if self.message_id is None:
            upstream_id = chunk.get("id")
            self.message_id = message_id(upstream_id) if upstream_id else f"msg_{uuid.uuid4().hex[:24]}"
        usage = {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 0,
        }
        message: JSON = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model or str(chunk.get("model") or ""),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def _open_block(self, kind: str, content_block: JSON) -> list[Event]:
        events = self._close()
        self._open = _Block(self._next_index, kind)
        self._next_index += 1
        data = {"type": "content_block_start", "index": self._open.index, "content_block": content_block}
        events.append(("content_block_start", data))
        if not self._pinged:
            self._pinged = True
            events.append(("ping", {"type": "ping"}))
        return events

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        index, self._open = self._open.index, None
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _text(self, text: str) -> list[Event]:
        events: list[Event] = []
        if self._open is None or self._open.kind != "text":
            events += self._open_block("text", {"type": "text", "text": ""})
        assert self._open is not None
        delta = {"type": "text_delta", "text": text}
        events.append(
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": self._open.index, "delta": delta},
            )
        )
        return events

    def _tool_call(self, call: JSON) -> list[Event]:
        events: list[Event] = []
        position = int(call.get("index", 0))
        function = call.get("function") or {}
        if position not in self._tools:
            block: JSON = {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": function.get("name") or "",
                "input": {},
            }
            events += self._open_block("tool_use", block)
            assert self._open is not None
            self._tools[position] = self._open.index
        fragment = function.get("arguments")
        if fragment:
            # A fragment of an earlier, already closed call still carries that call's block index.
            delta = {"type": "input_json_delta", "partial_json": fragment}
            data = {"type": "content_block_delta", "index": self._tools[position], "delta": delta}
            events.append(("content_block_delta", data))
        return events
