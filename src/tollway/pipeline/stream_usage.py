"""What a stream consumed when its upstream did not say: the text it carried, and a cheap estimate."""

from __future__ import annotations

import orjson

from tollway.catalog.tokens import estimate_tokens
from tollway.providers.sse import iter_event_payloads
from tollway.types import ModelRequest, Usage


def streamed_text(blocks: list[bytes]) -> str:
    """The text (content, legacy text and tool-call arguments) carried by canonical stream blocks."""
    text: list[str] = []
    for block in blocks:
        for _event, payload in iter_event_payloads(block):
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                text.append(str(delta.get("content") or choice.get("text") or ""))
                for tool_call in delta.get("tool_calls") or ():
                    text.append(str((tool_call.get("function") or {}).get("arguments") or ""))
    return "".join(text)


def estimate_stream_usage(request: ModelRequest, blocks: list[bytes]) -> Usage:
    """A cheap bill for a stream cut short before it reported usage (about 4 bytes a token)."""
    output = len(streamed_text(blocks).encode()) // 4
    return Usage(input_tokens=estimate_tokens(request.body, request.raw), output_tokens=output)
