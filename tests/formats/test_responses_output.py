"""Chat completions -> Responses `response` objects, checked against the API reference's own examples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from openai.types.responses import Response

from tollway.formats.responses import chat_to_response, response_to_history, responses_to_chat

FIXTURES = Path(__file__).parent / "fixtures" / "responses"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def assert_subset(expected: Any, actual: Any, path: str = "$") -> None:
    """Every field the API sent is there with the same value; fields newer API versions add may be extra."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing"
            assert_subset(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            assert_subset(want, got, f"{path}[{index}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def api_example(case: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """The API's example with its item ids swapped for ours (ids are opaque; only their prefix is kept)."""
    expected = copy.deepcopy(case["response"])
    for want, got in zip(expected["output"], ours["output"], strict=True):
        assert got["id"].split("_")[0] == want["id"].split("_")[0]
        want["id"] = got["id"]
    return expected


@pytest.mark.parametrize("name", ["text_input.json", "functions.json", "reasoning.json"])
def test_completion_translates_to_the_api_example(name: str) -> None:
    case = fixture(name)
    api = case["response"]
    ours = chat_to_response(
        case["chat_completion"],
        case["request"],
        api["id"],
        api["created_at"],
        completed_at=api["completed_at"],
    )
    expected = api_example(case, ours)
    for tool in expected["tools"]:
        # The API defaults `strict` to true; the gateway forwards the caller's choice and echoes it as sent,
        # since an upstream chat server would enforce strictness only when asked.
        tool["strict"] = case["request"]["tools"][0].get("strict")
    assert_subset(expected, ours)
    Response.model_validate(ours)


def test_length_makes_the_response_incomplete() -> None:
    completion = {
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Once upon"}, "finish_reason": "length"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 16, "total_tokens": 21},
    }
    response = chat_to_response(completion, {"model": "m", "max_output_tokens": 16}, "resp_1", 100)
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["completed_at"] is None
    assert response["max_output_tokens"] == 16
    assert response["output"][0]["status"] == "incomplete"
    Response.model_validate(response)


def test_refusal_logprobs_and_cached_tokens() -> None:
    logprobs = [{"token": "No", "logprob": -0.1, "bytes": [78, 111], "top_logprobs": []}]
    completion = {
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "No", "refusal": "I can't help with that."},
                "logprobs": {"content": logprobs},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 50,
            "completion_tokens": 9,
            "total_tokens": 59,
            "prompt_tokens_details": {"cached_tokens": 32},
            "completion_tokens_details": {"reasoning_tokens": 4},
        },
    }
    response = chat_to_response(
        completion, {"model": "m", "metadata": {"k": "v"}, "store": False}, "resp_2", 7
    )
    assert response["output"][0]["content"] == [
        {"type": "output_text", "annotations": [], "logprobs": logprobs, "text": "No"},
        {"type": "refusal", "refusal": "I can't help with that."},
    ]
    assert response["usage"] == {
        "input_tokens": 50,
        "input_tokens_details": {"cached_tokens": 32, "cache_write_tokens": 0},
        "output_tokens": 9,
        "output_tokens_details": {"reasoning_tokens": 4},
        "total_tokens": 59,
    }
    assert (response["metadata"], response["store"], response["completed_at"]) == ({"k": "v"}, False, 7)
    Response.model_validate(response)


def test_history_continues_a_tool_round_trip() -> None:
    case = fixture("functions.json")
    first = {**case["request"], "instructions": "Answer about weather."}
    chat = responses_to_chat(first)
    response = chat_to_response(case["chat_completion"], first, "resp_1", 1)
    history = response_to_history(chat["messages"], response)
    call = case["chat_completion"]["choices"][0]["message"]["tool_calls"][0]
    assert history == [
        {"role": "user", "content": case["request"]["input"]},
        {"role": "assistant", "content": None, "tool_calls": [call]},
    ]
    second = {
        "model": "gpt-5.4",
        "previous_response_id": "resp_1",
        "instructions": "New instructions.",
        "input": [{"type": "function_call_output", "call_id": call["id"], "output": "22C"}],
    }
    assert responses_to_chat(second, history)["messages"] == [
        {"role": "system", "content": "New instructions."},
        *history,
        {"role": "tool", "tool_call_id": call["id"], "content": "22C"},
    ]


def test_history_of_a_text_answer() -> None:
    case = fixture("text_input.json")
    response = chat_to_response(case["chat_completion"], case["request"], "resp_1", 1)
    history = response_to_history(responses_to_chat(case["request"])["messages"], response)
    assert history[-1] == {
        "role": "assistant",
        "content": case["chat_completion"]["choices"][0]["message"]["content"],
    }
    assert len(history) == 2
