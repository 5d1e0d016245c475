"""Responses create requests -> chat completions requests, checked against OpenAI reference fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tollway.errors import InvalidRequest
from tollway.formats.responses import responses_to_chat

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
REQUEST_FIXTURES = [
    "text_input.json",
    "image_input.json",
    "functions.json",
    "reasoning.json",
    "streaming.json",
    "function_round_trip.json",
    "structured_output.json",
]


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


@pytest.mark.parametrize("name", REQUEST_FIXTURES)
def test_request_fixture_translates_to_the_chat_request(name: str) -> None:
    case = fixture(name)
    assert responses_to_chat(case["request"]) == case["chat_request"]


def test_history_comes_after_the_instructions_and_before_the_input() -> None:
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    chat = responses_to_chat(
        {"model": "m", "instructions": "Be brief.", "input": "And now?", "previous_response_id": "resp_1"},
        history,
    )
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        *history,
        {"role": "user", "content": "And now?"},
    ]


def test_developer_messages_become_system_and_assistant_parts_become_a_string() -> None:
    chat = responses_to_chat(
        {
            "model": "m",
            "input": [
                {
                    "type": "message",
                    "role": "developer",
                    "content": [{"type": "input_text", "text": "Rules."}],
                },
                {
                    "type": "message",
                    "id": "msg_1",
                    "status": "completed",
                    "role": "assistant",
                    "content": [
                        {"type": "output_text", "text": "Earlier answer.", "annotations": [], "logprobs": []}
                    ],
                },
            ],
        }
    )
    assert chat["messages"] == [
        {"role": "system", "content": [{"type": "text", "text": "Rules."}]},
        {"role": "assistant", "content": "Earlier answer."},
    ]


def test_a_response_output_fed_back_as_input_makes_one_assistant_turn() -> None:
    output = [
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}],
        },
        {
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_1",
            "name": "f",
            "arguments": "{}",
        },
        {"type": "reasoning", "id": "rs_1", "summary": []},
    ]
    chat = responses_to_chat({"model": "m", "input": [{"role": "user", "content": "Go"}, *output]})
    assert chat["messages"][1] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }
    assert len(chat["messages"]) == 2


def test_parameters_map_to_their_chat_names() -> None:
    chat = responses_to_chat(
        {
            "model": "m",
            "input": "x",
            "text": {"format": {"type": "json_object"}, "verbosity": "low"},
            "include": ["message.output_text.logprobs"],
            "top_logprobs": 3,
            "service_tier": "flex",
            "truncation": "disabled",
            "stream_options": {"include_obfuscation": False},
            "background": False,
        }
    )
    assert chat == {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "service_tier": "flex",
        "response_format": {"type": "json_object"},
        "verbosity": "low",
        "logprobs": True,
        "top_logprobs": 3,
    }


def test_allowed_tools_tool_choice() -> None:
    chat = responses_to_chat(
        {
            "model": "m",
            "input": "x",
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            "tool_choice": {
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "f"}],
            },
        }
    )
    assert chat["tool_choice"] == {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "f"}}]},
    }
    assert "parallel_tool_calls" not in chat


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"model": "m", "input": "x", "frobnicate": 1}, "frobnicate", "Unknown parameter: 'frobnicate'."),
        ({"input": "x"}, "model", "Missing required parameter: 'model'."),
        ({"model": "m"}, "input", "Missing required parameter: 'input'."),
        ({"model": "m", "input": 3}, "input", "expected a string or an array"),
        ({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type", "'web_search'"),
        ({"model": "m", "input": "x", "background": True}, "background", "background mode is not supported"),
        ({"model": "m", "input": "x", "conversation": "conv_1"}, "conversation", "previous_response_id"),
        (
            {"model": "m", "input": "x", "tool_choice": {"type": "web_search_preview"}},
            "tool_choice",
            "built-in",
        ),
        (
            {"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}},
            "text.format.name",
            "Missing required parameter",
        ),
        (
            {"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]},
            "input[0].type",
            "'item_reference'",
        ),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role", "developer"),
        (
            {"model": "m", "input": [{"type": "function_call_output", "output": "1"}]},
            "input[0].call_id",
            "call_id",
        ),
        (
            {
                "model": "m",
                "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}],
            },
            "input[0].content[0].file_id",
            "file_id",
        ),
        (
            {
                "model": "m",
                "input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x"}]}],
            },
            "input[0].content[0].file_data",
            "file_data",
        ),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "input[0].content[0].type",
            "'input_audio'",
        ),
    ],
)
def test_requests_the_gateway_cannot_serve_are_refused_with_what_to_fix(
    body: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        responses_to_chat(body)
    assert caught.value.param == param
    assert words in caught.value.message


def test_file_data_travels_as_a_chat_file_part() -> None:
    part = {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,AAAA"}
    chat = responses_to_chat({"model": "m", "input": [{"role": "user", "content": [part]}]})
    assert chat["messages"][0]["content"] == [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA", "filename": "a.pdf"}}
    ]


def test_function_call_output_as_text_parts() -> None:
    item = {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text", "text": "42"}]}
    chat = responses_to_chat({"model": "m", "input": [item]})
    assert chat["messages"] == [
        {"role": "tool", "tool_call_id": "c", "content": [{"type": "text", "text": "42"}]}
    ]
