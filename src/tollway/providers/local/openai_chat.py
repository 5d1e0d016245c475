"""OpenAI chat and legacy completions for the local chat model: request fields -> engine arguments,
`Generation` -> `chat.completion` / `text_completion`, and streams of pieces -> OpenAI chunks.

What the packaged model cannot do (tools, images, several choices, logprobs, JSON mode) is refused with a
400 naming the field, rather than silently ignored.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from tollway.errors import InvalidRequest
from tollway.providers.local.chat import MODEL_ID, Generation
from tollway.providers.local.errors import LocalModelUnsupported
from tollway.providers.sse import data_event
from tollway.types import JSON, JsonResult, ModelRequest, Usage

# Chat request fields the packaged model cannot honour: (field, test that it was really asked, why).
_CHAT_REFUSALS: tuple[tuple[str, Any, str], ...] = (
    ("tools", bool, "it cannot call tools"),
    ("functions", bool, "it cannot call functions"),
    ("n", lambda v: isinstance(v, int) and v > 1, "it returns one choice per request (n=1)"),
    ("logprobs", lambda v: v is True or (isinstance(v, int) and not isinstance(v, bool)), "no logprobs"),
    ("audio", bool, "it has no audio output"),
    (
        "response_format",
        lambda v: isinstance(v, dict) and v.get("type") not in (None, "text"),
        "it has no JSON mode",
    ),
)
_COMPLETION_REFUSALS: tuple[tuple[str, Any, str], ...] = (
    ("suffix", lambda v: v is not None, "no fill-in-the-middle"),
    ("best_of", lambda v: v not in (None, 1), "it returns one choice per request"),
    ("n", lambda v: isinstance(v, int) and v > 1, "it returns one choice per request (n=1)"),
    ("logprobs", lambda v: v is not None, "no logprobs"),
)
_TEXT_PART_TYPES = frozenset({"text", "input_text"})


def chat_arguments(body: JSON) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(messages, sampling) for the engine, refusing what the packaged model cannot do."""
    _refuse(body, _CHAT_REFUSALS)
    messages = body["messages"]
    for index, message in enumerate(messages):
        _check_text_only(message.get("content"), f"messages[{index}].content")
    return messages, sampling_arguments(body)


def completion_arguments(body: JSON) -> tuple[str, dict[str, Any]]:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise _unsupported("'prompt' must be one string (no batches, no token arrays).", "prompt")
    _refuse(body, _COMPLETION_REFUSALS)
    return prompt, sampling_arguments(body)


def sampling_arguments(body: JSON) -> dict[str, Any]:
    """The OpenAI sampling fields the engine takes; absent ones keep the engine's defaults."""
    sampling: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens is not None:
        sampling["max_tokens"] = max_tokens
    for field in ("temperature", "top_p", "stop", "seed"):
        if body.get(field) is not None:
            sampling[field] = body[field]
    return sampling


def _refuse(body: JSON, refusals: tuple[tuple[str, Any, str], ...]) -> None:
    for field, asked, why in refusals:
        if asked(body.get(field)):
            raise _unsupported(f"'{field}' is not supported: {why}.", field)


def _check_text_only(content: Any, param: str) -> None:
    if not isinstance(content, list):
        return
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str) or kind not in _TEXT_PART_TYPES:
            raise _unsupported(f"only text content is supported; got a '{kind}' part (no images).", param)
        if not isinstance(part.get("text"), str):
            raise InvalidRequest(
                f"Invalid type for '{param}[{index}].text': expected a string.",
                param=f"{param}[{index}].text",
            )


def _unsupported(reason: str, param: str) -> LocalModelUnsupported:
    return LocalModelUnsupported(MODEL_ID, reason, param=param)


def chat_completion(generation: Generation, model: str) -> JSON:
    message = {"role": "assistant", "content": generation.text, "refusal": None}
    return {
        "id": "chatcmpl-" + os.urandom(12).hex(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": generation.finish_reason}
        ],
        "usage": _token_usage(generation),
    }


def text_completion(generation: Generation, model: str, echo: str = "") -> JSON:
    choice = {
        "text": echo + generation.text,
        "index": 0,
        "logprobs": None,
        "finish_reason": generation.finish_reason,
    }
    return {
        "id": "cmpl-" + os.urandom(12).hex(),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": _token_usage(generation),
    }


def _token_usage(generation: Generation) -> JSON:
    return {
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "total_tokens": generation.prompt_tokens + generation.completion_tokens,
    }


def generation_result(generation: Generation, body: JSON) -> JsonResult:
    usage = Usage(input_tokens=generation.prompt_tokens, output_tokens=generation.completion_tokens)
    return JsonResult(usage=usage, data=body)


def include_usage(request: ModelRequest) -> bool:
    options = request.body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


@dataclass
class ChunkWriter:
    """OpenAI stream chunks for one answer: chat (`delta`) or legacy completion (`text`)."""

    kind: str  # "chat" or "completion"
    model: str
    echo: str = ""  # completions with `echo`: the prompt is streamed first

    def __post_init__(self) -> None:
        prefix = "chatcmpl-" if self.kind == "chat" else "cmpl-"
        self.id = prefix + os.urandom(12).hex()
        self.created = int(time.time())

    def first(self) -> bytes:
        if self.is_chat:
            return self._event(self._choice({"role": "assistant", "content": ""}, None))
        return self.piece(self.echo) if self.echo else b""

    def piece(self, text: str) -> bytes:
        return self._event(self._choice({"content": text} if self.is_chat else text, None))

    def last(self, generation: Generation) -> bytes:
        return self._event(self._choice({} if self.is_chat else "", generation.finish_reason))

    def usage(self, generation: Generation) -> bytes:
        return self._event([], usage=_token_usage(generation))

    @property
    def is_chat(self) -> bool:
        return self.kind == "chat"

    def _choice(self, content: Any, finish_reason: str | None) -> list[JSON]:
        key = "delta" if self.is_chat else "text"
        return [{"index": 0, key: content, "logprobs": None, "finish_reason": finish_reason}]

    def _event(self, choices: list[JSON], **extra: Any) -> bytes:
        obj = "chat.completion.chunk" if self.is_chat else "text_completion"
        chunk = {"id": self.id, "object": obj, "created": self.created, "model": self.model}
        return data_event(orjson.dumps({**chunk, "choices": choices, **extra}))


class LocalStream:
    """A ChatStream over the pool's generation: one SSE event per generated piece, token by token."""

    format = "openai"

    def __init__(
        self, pieces: AsyncGenerator[Any, None], first: Any, writer: ChunkWriter, include_usage: bool
    ) -> None:
        self.usage: Usage | None = None
        self.complete = False
        self._pieces = pieces
        self._first = first
        self._writer = writer
        self._include_usage = include_usage

    @classmethod
    async def open(
        cls, pieces: AsyncGenerator[Any, None], writer: ChunkWriter, include_usage: bool
    ) -> LocalStream:
        """Wait for the first piece, so a refused prompt is a plain 400 rather than an in-stream error."""
        try:
            first = await anext(pieces)
        except BaseException:
            await pieces.aclose()
            raise
        return cls(pieces, first, writer, include_usage)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._blocks()

    async def aclose(self) -> None:
        await self._pieces.aclose()  # stops the generator in its thread and frees the model

    async def _blocks(self) -> AsyncIterator[bytes]:
        yield self._writer.first()
        async with contextlib.aclosing(self._pieces) as rest:
            item = self._first
            while not isinstance(item, Generation):
                yield self._writer.piece(str(item))
                item = await anext(rest)
        self.usage = Usage(input_tokens=item.prompt_tokens, output_tokens=item.completion_tokens)
        self.complete = True
        yield self._writer.last(item)
        if self._include_usage:
            yield self._writer.usage(item)
