"""Anthropic Messages requests <-> OpenAI chat requests, over fixtures from both public references."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tollway.errors import InvalidRequest
from tollway.formats.anthropic import chat_to_messages, messages_to_chat

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_request_with_tools_to_chat() -> None:
    chat = messages_to_chat(load("request_with_tools.json"))
    assert chat["model"] == "claude-opus-4-1-20250805"
    assert chat["max_tokens"] == 1024
    assert chat["messages"] == [{"role": "user", "content": "What is the weather like in San Francisco?"}]
    tool = chat["tools"][0]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "get_weather"
    assert tool["function"]["parameters"]["required"] == ["location"]
    assert "tool_choice" not in chat
    assert "stream" not in chat


def test_tool_round_trip_to_chat() -> None:
    chat = messages_to_chat(load("request_tool_result.json"))
    system, user, assistant, tool, follow_up = chat["messages"]
    assert system == {"role": "system", "content": "You are a weather assistant."}
    assert user == {"role": "user", "content": "What is the weather like in San Francisco?"}
    assert assistant["role"] == "assistant"
    assert assistant["content"].startswith("<thinking>")
    assert assistant["tool_calls"] == [
        {
            "id": "toolu_01A09q90qw90lq917835lq9",
            "type": "function",
            "function": {
                "name": "get_weather",
                "arguments": '{"location":"San Francisco, CA","unit":"celsius"}',
            },
        }
    ]
    assert tool == {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "15 degrees"}
    assert follow_up == {
        "role": "user",
        "content": [
            {"type": "text", "text": "And show me this picture."},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
        ],
    }
    assert chat["tool_choice"] == "auto"
    assert chat["parallel_tool_calls"] is False
    assert chat["stop"] == ["\n\nHuman:"]
    assert chat["temperature"] == 0.5
    assert "top_k" not in chat  # OpenAI refuses it; Anthropic upstreams get it from the native body
    assert chat["user"] == "user-123"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    body = {**load("request_with_tools.json"), "tool_choice": choice}
    assert messages_to_chat(body)["tool_choice"] == expected


def test_stream_asks_for_usage() -> None:
    chat = messages_to_chat({**load("request_with_tools.json"), "stream": True})
    assert chat["stream"] is True
    assert chat["stream_options"] == {"include_usage": True}


def test_tool_result_blocks_errors_and_images() -> None:
    body = load("request_tool_result.json")
    body["messages"][2]["content"][0] = {
        "type": "tool_result",
        "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
        "is_error": True,
        "content": [
            {"type": "text", "text": "station offline"},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/radar.png"}},
        ],
    }
    messages = messages_to_chat(body)["messages"]
    assert messages[3] == {
        "role": "tool",
        "tool_call_id": "toolu_01A09q90qw90lq917835lq9",
        "content": "[tool error] station offline",
    }
    assert {"type": "image_url", "image_url": {"url": "https://example.com/radar.png"}} in messages[4][
        "content"
    ]


def test_documents() -> None:
    pdf = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQ="}
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 10,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "document", "source": pdf, "title": "report.pdf"},
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "plain"},
                    },
                    {"type": "text", "text": "Summarise."},
                ],
            }
        ],
    }
    parts = messages_to_chat(body)["messages"][0]["content"]
    assert parts[0] == {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBERi0xLjQ=", "filename": "report.pdf"},
    }
    assert parts[1] == {"type": "text", "text": "plain"}


def test_structured_output_maps_to_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = {
        **load("request_with_tools.json"),
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
    }
    fmt = messages_to_chat(body)["response_format"]
    assert fmt == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"model": None}, "model: Field required"),
        ({"messages": []}, "messages: at least one message is required"),
        ({"frequency_penalty": 1}, "frequency_penalty: Extra inputs are not permitted"),
        ({"temperature": 2}, "temperature: Input should be less than or equal to 1"),
        (
            {"messages": [{"role": "system", "content": "x"}]},
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            {"messages": [{"role": "user", "content": ""}]},
            "messages.0: all messages must have non-empty content",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
            "messages: text content blocks must be non-empty",
        ),
        ({"messages": [{"role": "user", "content": "x", "name": "bob"}]}, "messages.0.name: Extra inputs"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice: Input tag"),
    ],
)
def test_validation_like_anthropic(change: dict[str, Any], message: str) -> None:
    body = load("request_with_tools.json")
    for name, value in change.items():
        if value is None:
            body.pop(name)
        else:
            body[name] = value
    with pytest.raises(InvalidRequest) as caught:
        messages_to_chat(body)
    assert caught.value.message.startswith(message)
    assert caught.value.status == 400


def test_tool_use_needs_tool_result_next() -> None:
    body = load("request_tool_result.json")
    body["messages"][2]["content"] = body["messages"][2]["content"][1:]
    with pytest.raises(InvalidRequest) as caught:
        messages_to_chat(body)
    assert caught.value.message == (
        "messages.2: `tool_use` ids were found without `tool_result` blocks immediately after: "
        "toolu_01A09q90qw90lq917835lq9. Each `tool_use` block must have a corresponding `tool_result` block "
        "in the next message."
    )


def test_tool_result_needs_tool_use_before() -> None:
    body = load("request_tool_result.json")
    body["messages"] = [body["messages"][0], body["messages"][2]]
    with pytest.raises(InvalidRequest, match="unexpected `tool_use_id` found in `tool_result` blocks"):
        messages_to_chat(body)


# --- OpenAI -> Anthropic ----------------------------------------------------------------------------


def test_openai_request_to_messages() -> None:
    out = chat_to_messages(load("openai_request_tools.json"))
    assert out["system"] == "You are a helpful assistant."
    assert out["max_tokens"] == 300
    assert out["temperature"] == 1.0  # OpenAI's 0..2 range clamped to Anthropic's 0..1
    assert out["stop_sequences"] == ["END"]
    assert out["metadata"] == {"user_id": "user-123"}
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert [tool["name"] for tool in out["tools"]] == ["get_weather", "get_time"]
    assert out["tools"][0]["input_schema"]["required"] == ["location"]
    assert out["output_config"]["format"]["type"] == "json_schema"
    user, assistant, results = out["messages"]
    assert user == {
        "role": "user",
        "content": [{"type": "text", "text": "What's the weather like in Paris today?"}],
    }
    assert assistant["content"] == [
        {
            "type": "tool_use",
            "id": "call_12345xyz",
            "name": "get_weather",
            "input": {"location": "Paris, France"},
        },
        {
            "type": "tool_use",
            "id": "call_67890abc",
            "name": "get_time",
            "input": {"location": "Paris, France"},
        },
    ]
    # Both tool results and the user's next words fold into one user turn, tool results first.
    assert results["role"] == "user"
    assert results["content"][:2] == [
        {"type": "tool_result", "tool_use_id": "call_12345xyz", "content": "14"},
        {"type": "tool_result", "tool_use_id": "call_67890abc", "content": "10:30"},
    ]
    assert results["content"][3]["source"]["type"] == "url"


def test_openai_request_round_trips_through_anthropic_validation() -> None:
    out = chat_to_messages(load("openai_request_tools.json"))
    out["model"] = "claude-sonnet-4-6"
    messages_to_chat(out)  # what we send is what Anthropic accepts


def test_data_url_images_and_defaults() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "a"},
            {"role": "system", "content": [{"type": "text", "text": "b"}]},
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}],
            },
        ],
    }
    out = chat_to_messages(body, default_max_tokens=77)
    assert out["max_tokens"] == 77
    assert out["system"] == "a\n\nb"
    assert out["messages"][0]["content"][0] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n": 2}, "n:"),
        ({"logprobs": True}, "logprobs:"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format.json_schema",
        ),
    ],
)
def test_openai_fields_anthropic_cannot_serve(change: dict[str, Any], message: str) -> None:
    body = {**copy.deepcopy(load("openai_request_tools.json")), **change}
    with pytest.raises(InvalidRequest) as caught:
        chat_to_messages(body)
    assert caught.value.message.startswith(message)


def test_json_object_maps_to_generic_schema() -> None:
    out = chat_to_messages(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_object"},
        }
    )
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": {"type": "object"}}}
