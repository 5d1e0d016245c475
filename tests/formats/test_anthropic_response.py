"""Anthropic responses <-> OpenAI chat completions: content, tool calls, stop reasons, usage, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tollway.errors import UpstreamStatus
from tollway.formats.anthropic import (
    chat_completion_to_message,
    message_to_chat_completion,
    usage_from_anthropic,
)
from tollway.formats.anthropic_response import (
    FINISH_TO_STOP,
    STOP_TO_FINISH,
    anthropic_usage,
    openai_usage,
    upstream_error,
)
from tollway.types import Usage

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_tool_use_message_to_chat_completion() -> None:
    completion = message_to_chat_completion(load("response_tool_use.json"), "claude-opus-4-1", created=1)
    assert completion["id"] == "chatcmpl-01Aq9w938a90dw8q"
    assert completion["object"] == "chat.completion"
    assert completion["created"] == 1
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"].startswith("<thinking>I need to use get_weather")
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_01A09q90qw90lq917835lq9",
            "type": "function",
            "function": {
                "name": "get_weather",
                "arguments": '{"location":"San Francisco, CA","unit":"celsius"}',
            },
        }
    ]
    assert completion["usage"]["prompt_tokens"] == 472
    assert completion["usage"]["completion_tokens"] == 89
    assert completion["usage"]["total_tokens"] == 561


def test_openai_completion_to_message() -> None:
    message = chat_completion_to_message(load("openai_completion_tool_calls.json"), "gpt-4.1")
    assert message["id"] == "msg_BAt1Zc3XJvNZyDbpRZq7XNyS6kHmK"
    assert message["type"] == "message"
    assert message["role"] == "assistant"
    assert message["stop_reason"] == "tool_use"
    assert message["stop_sequence"] is None
    assert message["content"] == [
        {
            "type": "tool_use",
            "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
            "name": "get_weather",
            "input": {"location": "Paris, France"},
        },
        {
            "type": "tool_use",
            "id": "call_ABCdefGHIjklMNOpqrSTUvwx",
            "name": "get_time",
            "input": {"location": "Paris, France"},
        },
    ]
    # OpenAI's prompt_tokens include the cached ones; Anthropic's input_tokens do not.
    assert message["usage"] == {
        "input_tokens": 86,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1920,
        "output_tokens": 300,
    }


def test_round_trip_keeps_everything_that_maps() -> None:
    original = load("response_tool_use.json")
    back = chat_completion_to_message(message_to_chat_completion(original, "m"), original["model"])
    assert back == original


def test_usage_with_cache_both_ways() -> None:
    anthropic = {
        "input_tokens": 10,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 200,
        "output_tokens": 5,
    }
    openai = openai_usage(anthropic)
    assert openai == {
        "prompt_tokens": 1210,
        "completion_tokens": 5,
        "total_tokens": 1215,
        "prompt_tokens_details": {"cached_tokens": 1000, "cache_creation_tokens": 200},
    }
    assert anthropic_usage(openai) == anthropic
    assert usage_from_anthropic(anthropic) == Usage(
        input_tokens=1210, cached_input_tokens=1000, cache_write_tokens=200, output_tokens=5
    )
    # tollway's Usage reads the OpenAI form to the same numbers (cache writes aside: OpenAI has none).
    assert Usage.from_openai(openai).input_tokens == 1210
    assert Usage.from_openai(openai).cached_input_tokens == 1000


@pytest.mark.parametrize(("stop", "finish"), sorted(STOP_TO_FINISH.items()))
def test_stop_reason_table(stop: str, finish: str) -> None:
    message = {**load("response_tool_use.json"), "stop_reason": stop}
    assert message_to_chat_completion(message, "m")["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(("finish", "stop"), sorted(FINISH_TO_STOP.items()))
def test_finish_reason_table(finish: str, stop: str) -> None:
    completion = load("openai_completion_tool_calls.json")
    completion["choices"][0]["finish_reason"] = finish
    assert chat_completion_to_message(completion, "m")["stop_reason"] == stop


def test_text_and_refusal() -> None:
    completion = {
        "id": "chatcmpl-1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": "I can't help."},
                "finish_reason": "stop",
            }
        ],
    }
    message = chat_completion_to_message(completion, "m")
    assert message["content"] == [{"type": "text", "text": "I can't help."}]
    assert message["stop_reason"] == "refusal"


@pytest.mark.parametrize(
    ("status", "fixture", "expected_status", "kind"),
    [
        (529, "error_overloaded.json", 503, "overloaded_error"),
        (0, "error_overloaded.json", 503, "overloaded_error"),  # as a stream's error event
        (400, "error_invalid_request.json", 400, "invalid_request_error"),
    ],
)
def test_error_bodies(status: int, fixture: str, expected_status: int, kind: str) -> None:
    error = upstream_error(status, load(fixture), backend="claude", headers={"retry-after": "3"})
    assert isinstance(error, UpstreamStatus)
    assert error.http_status == expected_status
    assert error.family == kind
    assert error.backend == "claude"
    assert error.message == load(fixture)["error"]["message"]
    assert error.headers == {"retry-after": "3"}
