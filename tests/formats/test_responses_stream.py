"""Chat chunk streams -> Responses stream events: the API order, the SDK shapes, the non-streamed answer."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import orjson
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from tollway.errors import RateLimited, UpstreamError
from tollway.formats.responses import chat_to_response
from tollway.formats.responses_stream import ChatChunksToResponseEvents, sse_event

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
EVENT = TypeAdapter(ResponseStreamEvent)
REQUEST = {
    "model": "gpt-4.1",
    "input": "Weather in Paris and Bogotá?",
    "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": True}],
    "stream": True,
}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = (
        [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    )
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 5,
        "model": "gpt-4.1-2025-04-14",
        "choices": choices,
        **extra,
    }


def call(index: int, arguments: str, call_id: str | None = None, name: str | None = None) -> dict[str, Any]:
    head = {"id": call_id, "type": "function"} if call_id else {}
    function = {"name": name, "arguments": arguments} if name else {"arguments": arguments}
    return {"tool_calls": [{"index": index, **head, "function": function}]}


USAGE = {"prompt_tokens": 40, "completion_tokens": 30, "total_tokens": 70}
PARALLEL_CHUNKS = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Let me"}),
    chunk({"content": " check both."}),
    chunk(call(0, "", "call_paris", "get_weather")),
    chunk(call(0, '{"city":')),
    chunk(call(0, '"Paris"}')),
    chunk(call(1, "", "call_bogota", "get_weather")),
    chunk(call(1, '{"city":"Bo')),
    chunk(call(1, 'gotá"}')),
    chunk({}, "tool_calls"),
    chunk(usage=USAGE),
]


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """A chat completion from its chunks, the way a client accumulates a stream (independent of the code)."""
    text, calls, finish = "", {}, None
    for piece in chunks:
        for choice in piece["choices"]:
            text += choice["delta"].get("content") or ""
            for fragment in choice["delta"].get("tool_calls") or []:
                entry = calls.setdefault(
                    fragment["index"],
                    {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
                )
                entry["id"] = fragment.get("id") or entry["id"]
                entry["function"]["name"] += fragment["function"].get("name") or ""
                entry["function"]["arguments"] += fragment["function"].get("arguments") or ""
            finish = choice["finish_reason"] or finish
    message = {"role": "assistant", "content": text or None, "tool_calls": [calls[i] for i in sorted(calls)]}
    usage = next(piece["usage"] for piece in chunks if piece.get("usage"))
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 5,
        "model": chunks[0]["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }


def run(
    chunks: list[dict[str, Any]], request: dict[str, Any] = REQUEST, rid: str = "resp_abc"
) -> list[dict[str, Any]]:
    stream = ChatChunksToResponseEvents(request, rid, 1000)
    events = [event for piece in chunks for event in stream.feed(piece)]
    return events + stream.finish(completed_at=1001)


def test_text_and_parallel_tool_calls_end_in_the_non_streamed_response() -> None:
    events = run(PARALLEL_CHUNKS)
    final = events[-1]
    assert final["type"] == "response.completed"
    assert final["response"] == chat_to_response(
        assemble(PARALLEL_CHUNKS), REQUEST, "resp_abc", 1000, completed_at=1001
    )
    assert [item["type"] for item in final["response"]["output"]] == [
        "message",
        "function_call",
        "function_call",
    ]


def test_deltas_concatenate_to_the_final_text_and_arguments() -> None:
    events = run(PARALLEL_CHUNKS)
    output = events[-1]["response"]["output"]
    by_item = {item["id"]: item for item in output}
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == output[0]["content"][0]["text"] == "Let me check both."
    for item_id, item in by_item.items():
        if item["type"] == "function_call":
            deltas = [
                e["delta"]
                for e in events
                if e["type"].endswith("arguments.delta") and e["item_id"] == item_id
            ]
            done = next(e for e in events if e["type"].endswith("arguments.done") and e["item_id"] == item_id)
            assert "".join(deltas) == done["arguments"] == item["arguments"]
            assert done["name"] == item["name"] == "get_weather"
    assert [item["call_id"] for item in output[1:]] == ["call_paris", "call_bogota"]


def test_events_come_in_the_api_order_and_the_sdk_accepts_every_one() -> None:
    events = run(PARALLEL_CHUNKS)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        EVENT.validate_python(event)
    Response.model_validate(events[-1]["response"])
    kinds = [kind for kind, _ in itertools.groupby(e["type"] for e in events)]  # runs of deltas collapse
    item = [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        *item,
        *item,
        "response.completed",
    ]


def test_the_api_streaming_example_is_reproduced() -> None:
    case = json.loads((FIXTURES / "streaming.json").read_text())
    api_events = case["events"]
    rid = api_events[0]["response"]["id"]
    created = api_events[0]["response"]["created_at"]
    stream = ChatChunksToResponseEvents(case["request"], rid, created)
    ours = [event for piece in case["chunks"] for event in stream.feed(piece)] + stream.finish(
        completed_at=created
    )
    # The example shows one text delta and elides the rest; ids of items are opaque.
    ours = [
        e
        for i, e in enumerate(ours)
        if not (e["type"].endswith(".delta") and ours[i - 1]["type"] == e["type"])
    ]
    api_id = api_events[2]["item"]["id"]
    ours_json = orjson.dumps(ours).decode().replace(ours[2]["item"]["id"], api_id)
    assert [e["type"] for e in ours] == [e["type"] for e in api_events]
    for want, got in zip(api_events, json.loads(ours_json), strict=True):
        assert_subset(want, got, want["type"])


def assert_subset(expected: Any, actual: Any, path: str) -> None:
    if isinstance(expected, dict):
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing"
            assert_subset(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), path
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            assert_subset(want, got, f"{path}[{index}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def test_length_ends_with_response_incomplete() -> None:
    chunks = [chunk({"content": "Once upon"}), chunk({}, "length"), chunk(usage=USAGE)]
    events = run(chunks, {"model": "m", "input": "story", "max_output_tokens": 16})
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-2]["item"]["status"] == "incomplete"
    for event in events:
        EVENT.validate_python(event)


def test_refusal_streams_as_refusal_events() -> None:
    events = run(
        [chunk({"refusal": "I can't"}), chunk({"refusal": " help."}), chunk({}, "stop")], {"model": "m"}
    )
    kinds = [e["type"] for e in events]
    assert "response.refusal.delta" in kinds
    done = next(e for e in events if e["type"] == "response.refusal.done")
    assert done["refusal"] == "I can't help."
    assert events[-1]["response"]["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't help."}]
    for event in events:
        EVENT.validate_python(event)


def test_failure_after_the_start_is_response_failed() -> None:
    stream = ChatChunksToResponseEvents({"model": "m"}, "resp_x", 1)
    stream.feed(chunk({"content": "Hel"}))
    (failed,) = stream.fail(RateLimited("Too many requests.", retry_after=2))
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {"code": "rate_limit_exceeded", "message": "Too many requests."}
    assert failed["response"]["output"][0]["content"][0]["text"] == "Hel"
    EVENT.validate_python(failed)


def test_failure_before_the_start_is_an_error_event() -> None:
    stream = ChatChunksToResponseEvents({"model": "m"}, "resp_x", 1)
    (error,) = stream.fail(UpstreamError("upstream 'openai' closed the stream", backend="openai"))
    assert error == {
        "type": "error",
        "code": "upstream_error",
        "message": "upstream 'openai' closed the stream",
        "param": None,
        "sequence_number": 0,
    }
    EVENT.validate_python(error)


def test_sse_framing() -> None:
    event = {"type": "response.output_text.delta", "delta": "é", "sequence_number": 3}
    framed = sse_event(event)
    assert framed.startswith(b"event: response.output_text.delta\ndata: {")
    assert framed.endswith(b"}\n\n")
    assert orjson.loads(framed.split(b"data: ", 1)[1]) == event


def test_completion_assembles_the_stream() -> None:
    stream = ChatChunksToResponseEvents(REQUEST, "resp_abc", 1000)
    for piece in PARALLEL_CHUNKS:
        stream.feed(piece)
    completion = stream.completion()
    expected = copy.deepcopy(assemble(PARALLEL_CHUNKS))
    assert (
        completion["choices"][0]["message"]["tool_calls"] == expected["choices"][0]["message"]["tool_calls"]
    )
    assert completion["usage"] == USAGE
    assert completion["model"] == "gpt-4.1-2025-04-14"
