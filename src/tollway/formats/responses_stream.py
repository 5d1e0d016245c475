"""OpenAI chat.completion.chunk streams -> Responses API stream events.

`ChatChunksToResponseEvents` is fed the chunks of one streamed chat completion and answers, for each, the
Responses events it implies, numbered by `sequence_number`, in the order the API sends them:

    response.created, response.in_progress
    per message:    output_item.added, content_part.added, output_text.delta*, output_text.done,
                    content_part.done, output_item.done           (refusals: refusal.delta / refusal.done)
    per tool call:  output_item.added, function_call_arguments.delta*, function_call_arguments.done,
                    output_item.done
    response.completed | response.incomplete                     (or response.failed, via `fail`)

Items are streamed one after another, as the API does: an item is closed when the next one opens. Chat
upstreams stream tool calls one after another too; a late fragment for a call already closed (an upstream
interleaving calls) still lands in the final response object, which is the authoritative answer.

The final object equals `chat_to_response` of the completion the chunks assemble (`completion()`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from tollway.errors import TollwayError
from tollway.formats.responses_output import (
    FINISH_STATUS,
    chat_to_response,
    function_call_item,
    item_id,
    message_item,
    output_text_part,
    response_envelope,
)

JSON = dict[str, Any]

# Content part kind -> (part type, text field, event prefix). Only text deltas carry logprobs.
PART_KINDS = {
    "text": ("output_text", "text", "response.output_text"),
    "refusal": ("refusal", "refusal", "response.refusal"),
}
# The error codes a `response.failed` object may carry; everything else is the server's fault.
FAILED_CODES = {429: "rate_limit_exceeded"}


def sse_event(event: JSON) -> bytes:
    """One event framed as the API frames it: `event: <type>` then `data: <json>`."""
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


@dataclass(slots=True)
class _Part:
    kind: str
    text: str = ""
    logprobs: list[JSON] = field(default_factory=list)

    def wire(self) -> JSON:
        if self.kind == "text":
            return output_text_part(self.text, self.logprobs)
        return {"type": "refusal", "refusal": self.text}


@dataclass(slots=True)
class _Message:
    id: str
    output_index: int
    parts: list[_Part] = field(default_factory=list)

    def item(self, status: str) -> JSON:
        return message_item(self.id, [part.wire() for part in self.parts], status)


@dataclass(slots=True)
class _Call:
    id: str
    output_index: int
    call_id: str
    name: str
    arguments: str = ""

    def item(self, status: str) -> JSON:
        item = function_call_item(self.id, self.call_id, {"name": self.name, "arguments": self.arguments})
        return {**item, "status": status}


class ChatChunksToResponseEvents:
    """Translates one chat completion stream into Responses events: `feed` chunks, then `finish` or `fail`."""

    def __init__(self, request: JSON, response_id: str, created_at: int) -> None:
        self.request = request
        self.response_id = response_id
        self.created_at = created_at
        self.response: JSON | None = None  # the final response object, once finished or failed
        self._sequence = 0
        self._started = False
        self._items: list[_Message | _Call] = []  # by output_index
        self._open: _Message | _Call | None = None
        self._calls: dict[int, _Call] = {}  # by chat tool call index
        self._chunk: JSON = {}  # id, model, created, usage... of the chunks seen
        self._finish_reason: str | None = None

    # --- public ------------------------------------------------------------------------------------------

    def start(self) -> list[JSON]:
        """`response.created` and `response.in_progress`; sent by the first `feed` if not asked for before."""
        if self._started:
            return []
        self._started = True
        model = self.request.get("model") or ""
        envelope = response_envelope(
            self.request, self.response_id, self.created_at, model=model, status="in_progress"
        )
        return [
            self._event("response.created", response=envelope),
            self._event("response.in_progress", response=envelope),
        ]

    def feed(self, chunk: JSON) -> list[JSON]:
        events = self.start()
        self._chunk.update({key: value for key, value in chunk.items() if value is not None})
        self._chunk.pop("choices", None)
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) == 0:  # the request translation never asks for n > 1
                events += self._choice(choice)
        return events

    def finish(self, completed_at: int | None = None) -> list[JSON]:
        """Closes what is open and ends with `response.completed` (or `response.incomplete`)."""
        events = self.start() + self._close()
        response = chat_to_response(
            self.completion(), self.request, self.response_id, self.created_at, completed_at=completed_at
        )
        status = "completed" if response["status"] == "completed" else "incomplete"
        response["output"] = [item.item(status) for item in self._items]
        self.response = response
        return [*events, self._event(f"response.{response['status']}", response=response)]

    def fail(self, error: Exception) -> list[JSON]:
        """The stream broke: `response.failed` with the output so far (`error` if not yet started)."""
        status = getattr(error, "http_status", 500) if isinstance(error, TollwayError) else 500
        message = getattr(error, "message", None) or str(error) or "The upstream stream failed."
        if not self._started:
            code = error.error_code if isinstance(error, TollwayError) else "server_error"
            return [self._event("error", code=code, message=message, param=getattr(error, "param", None))]
        model = self._chunk.get("model") or self.request.get("model") or ""
        response = response_envelope(
            self.request, self.response_id, self.created_at, model=model, status="failed"
        )
        response["output"] = [item.item("incomplete") for item in self._items]
        response["error"] = {"code": FAILED_CODES.get(status, "server_error"), "message": message}
        self.response = response
        return [self._event("response.failed", response=response)]

    def completion(self) -> JSON:
        """The chat completion the chunks fed so far assemble into (for metering, history and comparison)."""
        messages = [item for item in self._items if isinstance(item, _Message)]
        parts = [part for message in messages for part in message.parts]
        text = "".join(part.text for part in parts if part.kind == "text")
        refusal = "".join(part.text for part in parts if part.kind == "refusal")
        logprobs = [lp for part in parts if part.kind == "text" for lp in part.logprobs]
        message: JSON = {"role": "assistant", "content": text or None, "refusal": refusal or None}
        calls = [item for item in self._items if isinstance(item, _Call)]
        if calls:
            message["tool_calls"] = [
                {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in calls
            ]
        choice = {
            "index": 0,
            "message": message,
            "logprobs": {"content": logprobs} if logprobs else None,
            "finish_reason": self._finish_reason,
        }
        return {**self._chunk, "object": "chat.completion", "choices": [choice]}

    # --- chunks ------------------------------------------------------------------------------------------

    def _choice(self, choice: JSON) -> list[JSON]:
        delta = choice.get("delta") or {}
        logprobs = choice.get("logprobs") or {}
        events: list[JSON] = []
        if delta.get("content"):
            events += self._text("text", delta["content"], logprobs.get("content") or [])
        if delta.get("refusal"):
            events += self._text("refusal", delta["refusal"], [])
        for call in delta.get("tool_calls") or []:
            events += self._tool_call(call)
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]
        return events

    def _text(self, kind: str, delta: str, logprobs: list[JSON]) -> list[JSON]:
        events: list[JSON] = []
        message = self._open
        if not isinstance(message, _Message):
            events += self._close()
            message = _Message(item_id("msg", self.response_id, len(self._items)), len(self._items))
            self._items.append(message)
            self._open = message
            events.append(
                self._event(
                    "response.output_item.added",
                    output_index=message.output_index,
                    item=message.item("in_progress"),
                )
            )
        part = next((p for p in message.parts if p.kind == kind), None)
        if part is None:
            part = _Part(kind)
            message.parts.append(part)
            events.append(self._part_event("response.content_part.added", message, part))
        part.text += delta
        part.logprobs += logprobs
        fields: JSON = {"delta": delta, "logprobs": logprobs} if kind == "text" else {"delta": delta}
        events.append(
            self._event(f"{PART_KINDS[kind][2]}.delta", **self._part_address(message, part), **fields)
        )
        return events

    def _tool_call(self, fragment: JSON) -> list[JSON]:
        index = fragment.get("index", 0)
        function = fragment.get("function") or {}
        arguments = function.get("arguments") or ""
        call = self._calls.get(index)
        events: list[JSON] = []
        if call is None:
            events += self._close()
            call = _Call(
                item_id("fc", self.response_id, len(self._items)),
                len(self._items),
                fragment.get("id") or "",
                function.get("name") or "",
            )
            self._calls[index] = call
            self._items.append(call)
            self._open = call
            events.append(
                self._event(
                    "response.output_item.added",
                    output_index=call.output_index,
                    item=call.item("in_progress"),
                )
            )
        call.arguments += arguments
        if arguments and call is self._open:
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=call.id,
                    output_index=call.output_index,
                    delta=arguments,
                )
            )
        return events

    # --- closing -----------------------------------------------------------------------------------------

    def _close(self) -> list[JSON]:
        item, self._open = self._open, None
        if item is None:
            return []
        status = "incomplete" if FINISH_STATUS.get(self._finish_reason) else "completed"
        if isinstance(item, _Call):
            done = self._event(
                "response.function_call_arguments.done",
                item_id=item.id,
                output_index=item.output_index,
                name=item.name,
                arguments=item.arguments,
            )
            return [done, self._item_done(item, status)]
        events: list[JSON] = []
        for part in item.parts:
            _, field_name, prefix = PART_KINDS[part.kind]
            extra = {"logprobs": part.logprobs} if part.kind == "text" else {}
            events.append(
                self._event(
                    f"{prefix}.done", **self._part_address(item, part), **{field_name: part.text}, **extra
                )
            )
            events.append(self._part_event("response.content_part.done", item, part))
        return [*events, self._item_done(item, status)]

    def _item_done(self, item: _Message | _Call, status: str) -> JSON:
        return self._event(
            "response.output_item.done", output_index=item.output_index, item=item.item(status)
        )

    # --- events ------------------------------------------------------------------------------------------

    def _part_address(self, message: _Message, part: _Part) -> JSON:
        return {
            "item_id": message.id,
            "output_index": message.output_index,
            "content_index": message.parts.index(part),
        }

    def _part_event(self, kind: str, message: _Message, part: _Part) -> JSON:
        return self._event(kind, **self._part_address(message, part), part=part.wire())

    def _event(self, kind: str, **fields: Any) -> JSON:
        event = {"type": kind, **fields, "sequence_number": self._sequence}
        self._sequence += 1
        return event
