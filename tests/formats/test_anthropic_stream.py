"""Stream translators both ways, and streamed == unstreamed once assembled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tollway.errors import UpstreamStatus
from tollway.formats.anthropic import chat_completion_to_message, message_to_chat_completion
from tollway.formats.anthropic_stream import AnthropicToChatChunks, ChatChunksToAnthropic, sse_event

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def assemble_chunks(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """What an OpenAI client builds from a stream: text, tool calls, finish reason, usage."""
    text, finish, usage = "", None, None
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(
                    call["index"],
                    {"id": call.get("id"), "type": "function", "function": {"name": "", "arguments": ""}},
                )
                slot["function"]["name"] += call.get("function", {}).get("name") or ""
                slot["function"]["arguments"] += call.get("function", {}).get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return {
        "text": text,
        "tool_calls": [calls[i] for i in sorted(calls)],
        "finish_reason": finish,
        "usage": usage,
    }


def parsed(call: dict[str, Any]) -> tuple[str, str, Any]:
    return call["id"], call["function"]["name"], json.loads(call["function"]["arguments"])


def assemble_events(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """What an Anthropic client builds from a stream (the SDK's accumulation rules)."""
    message: dict[str, Any] = {}
    partial: dict[int, str] = {}
    for name, data in events:
        if name == "message_start":
            message = json.loads(json.dumps(data["message"]))
        elif name == "content_block_start":
            assert data["index"] == len(message["content"])  # blocks open in order
            message["content"].append(dict(data["content_block"]))
        elif name == "content_block_delta":
            block, delta = message["content"][data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            else:
                partial[data["index"]] = partial.get(data["index"], "") + delta["partial_json"]
        elif name == "content_block_stop" and data["index"] in partial:
            message["content"][data["index"]]["input"] = json.loads(partial[data["index"]])
        elif name == "message_delta":
            message.update(data["delta"])
            message["usage"].update(data["usage"])
    return message


# --- Anthropic events -> OpenAI chunks --------------------------------------------------------------


def test_tool_use_stream_to_chunks() -> None:
    translator = AnthropicToChatChunks(created=7)
    chunks = [chunk for name, data in load("stream_tool_use.json") for chunk in translator.feed(name, data)]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[0]["id"] == "chatcmpl-014p7gG3wDgGV9EUtLvnow3U"
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    first_call = next(c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("tool_calls"))
    assert first_call["choices"][0]["delta"]["tool_calls"] == [
        {
            "index": 0,
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
    ]
    assert chunks[-1]["choices"] == []
    assert translator.finished
    assert translator.usage.output_tokens == 89


def test_streamed_equals_unstreamed_anthropic_to_openai() -> None:
    translator = AnthropicToChatChunks()
    chunks = [chunk for name, data in load("stream_tool_use.json") for chunk in translator.feed(name, data)]
    streamed = assemble_chunks(chunks)
    plain = message_to_chat_completion(load("message_tool_use.json"), "m")
    reply = plain["choices"][0]["message"]
    assert streamed["text"] == reply["content"] == "Okay, let's check the weather for San Francisco, CA:"
    # The same calls with the same arguments (streamed fragments keep the upstream's own spacing).
    assert [parsed(call) for call in streamed["tool_calls"]] == [parsed(call) for call in reply["tool_calls"]]
    assert json.loads(streamed["tool_calls"][0]["function"]["arguments"]) == {
        "location": "San Francisco, CA",
        "unit": "fahrenheit",
    }
    assert streamed["finish_reason"] == plain["choices"][0]["finish_reason"] == "tool_calls"
    assert streamed["usage"] == plain["usage"]


def test_parallel_tool_blocks_get_distinct_indexes() -> None:
    translator = AnthropicToChatChunks()
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {"id": "msg_1", "usage": {"input_tokens": 3, "output_tokens": 1}},
            },
        ),
    ]
    for index, name in enumerate(["a", "b"]):
        block = {"type": "tool_use", "id": f"toolu_{name}", "name": name, "input": {}}
        events += [
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": block}),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": '{"x":'},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": f'"{name}"}}'},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]
    events += [
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    result = assemble_chunks([chunk for name, data in events for chunk in translator.feed(name, data)])
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in result["tool_calls"]] == [
        ("toolu_a", "a", '{"x":"a"}'),
        ("toolu_b", "b", '{"x":"b"}'),
    ]
    assert result["usage"]["prompt_tokens"] == 3
    assert result["usage"]["completion_tokens"] == 9


@pytest.mark.parametrize(
    ("kind", "status"), [("overloaded_error", 503), ("api_error", 500), ("rate_limit_error", 429)]
)
def test_error_event_raises(kind: str, status: int) -> None:
    translator = AnthropicToChatChunks(backend="claude")
    translator.feed("message_start", {"type": "message_start", "message": {"id": "msg_1", "usage": {}}})
    with pytest.raises(UpstreamStatus) as caught:
        translator.feed("error", {"type": "error", "error": {"type": kind, "message": "boom"}})
    assert caught.value.http_status == status
    assert caught.value.family == kind
    assert caught.value.backend == "claude"


# --- OpenAI chunks -> Anthropic events --------------------------------------------------------------


def test_openai_tool_stream_to_exact_event_sequence() -> None:
    translator = ChatChunksToAnthropic(model="gpt-4.1")
    events = [event for chunk in load("openai_stream_tool_calls.json") for event in translator.feed(chunk)]
    events += translator.finish()
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start", "ping", *["content_block_delta"] * 7, "content_block_stop",
        "content_block_start", *["content_block_delta"] * 2, "content_block_stop",
        "message_delta",
        "message_stop",
    ]  # fmt: skip
    start = events[0][1]["message"]
    assert start["id"] == "msg_BAt1Zc3XJvNZyDbpRZq7XNyS6kHmK"
    assert start["content"] == [] and start["stop_reason"] is None
    assert set(start["usage"]) >= {"input_tokens", "output_tokens"}
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {
            "type": "tool_use",
            "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
            "name": "get_weather",
            "input": {},
        },
    }
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 86,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 1920,
            "output_tokens": 300,
        },
    }
    assert translator.finish() == []  # idempotent


def test_streamed_equals_unstreamed_openai_to_anthropic() -> None:
    translator = ChatChunksToAnthropic(model="gpt-4.1")
    events = [event for chunk in load("openai_stream_tool_calls.json") for event in translator.feed(chunk)]
    streamed = assemble_events(events + translator.finish())
    plain = chat_completion_to_message(load("openai_completion_tool_calls.json"), "gpt-4.1")
    assert streamed["content"] == plain["content"]
    assert streamed["stop_reason"] == plain["stop_reason"]
    assert streamed["usage"] == plain["usage"]
    assert streamed["id"] == plain["id"]


def test_text_then_tool_blocks_and_indexes() -> None:
    translator = ChatChunksToAnthropic(model="m", input_tokens=12)
    base = {"id": "chatcmpl-x", "object": "chat.completion.chunk"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = translator.feed(chunk({"role": "assistant", "content": ""}))
    events += translator.feed(chunk({"content": "Hi"}))
    events += translator.feed(chunk({"content": " there"}))
    events += translator.feed(
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ]
            }
        )
    )
    events += translator.feed(chunk({}, "tool_calls"))
    events += translator.finish()
    message = assemble_events(events)
    assert message["content"] == [
        {"type": "text", "text": "Hi there"},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {}},
    ]
    assert events[0][1]["message"]["usage"]["input_tokens"] == 12
    assert [name for name, _ in events].count("ping") == 1
    assert message["usage"]["output_tokens"] == 0  # no usage chunk: nothing to report


def test_empty_stream_still_closes() -> None:
    translator = ChatChunksToAnthropic(model="m")
    names = [name for name, _ in translator.finish()]
    assert names == ["message_start", "message_delta", "message_stop"]


def test_sse_event_framing() -> None:
    assert sse_event("ping", {"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'
