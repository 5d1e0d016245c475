"""The Responses API surface, end to end: the official `openai` SDK -> a real `tollway serve` process ->
the OpenAI simulator (which speaks chat completions only: the gateway translates both ways)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response

from tests.gateway_process import GatewayProcess

WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.fixture(scope="module")
def key(gateway: GatewayProcess) -> str:
    return gateway.create_key("responses-e2e")


@pytest.fixture(scope="module")
def client(gateway: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def test_create_with_instructions_usage_and_headers(client: openai.OpenAI) -> None:
    raw = client.responses.with_raw_response.create(
        model="gpt-4o-mini", instructions="Be kind.", input="Hello there", metadata={"run": "e2e"}
    )
    response = raw.parse()
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed"
    assert response.output_text == "Echo: Hello there"
    assert response.instructions == "Be kind." and response.metadata == {"run": "e2e"}
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert raw.headers["x-tollway-model"] == "upstream:gpt-4o-mini"


def test_stream_ends_in_the_same_response(client: openai.OpenAI) -> None:
    whole = client.responses.create(model="gpt-4o-mini", input="Tell me about streaming please", store=False)
    events = list(
        client.responses.create(model="gpt-4o-mini", input="Tell me about streaming please", stream=True)
    )
    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert text == final.output_text == whole.output_text
    assert final.usage is not None and whole.usage is not None
    assert final.usage.total_tokens == whole.usage.total_tokens


def test_stream_helper_and_stored_stream_is_retrievable(client: openai.OpenAI) -> None:
    with client.responses.stream(model="gpt-4o-mini", input="Remember the stream") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Echo: Remember the stream"
    assert client.responses.retrieve(final.id).output_text == final.output_text


def test_function_tool_round_trip_with_previous_response_id(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model="gpt-4o-mini", input="What is the weather in Paris?", tools=[WEATHER_TOOL]
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and '"city"' in calls[0].arguments
    assert calls[0].id.startswith("fc_") and calls[0].call_id  # type: ignore[union-attr]
    second = client.responses.create(
        model="gpt-4o-mini",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 21C"}],
        tools=[WEATHER_TOOL],
    )
    assert second.output_text == "Tool results: sunny, 21C"
    assert second.previous_response_id == first.id


def test_stateless_round_trip_feeds_the_output_back(client: openai.OpenAI) -> None:
    inputs: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = client.responses.create(model="gpt-4o-mini", input=inputs, tools=[WEATHER_TOOL], store=False)
    call = next(item for item in first.output if item.type == "function_call")
    inputs += [item.model_dump(exclude_none=True) for item in first.output]
    inputs.append({"type": "function_call_output", "call_id": call.call_id, "output": "rain"})  # type: ignore[union-attr]
    second = client.responses.create(model="gpt-4o-mini", input=inputs, tools=[WEATHER_TOOL], store=False)
    assert second.output_text == "Tool results: rain"


def test_streamed_function_call(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model="gpt-4o-mini", input="weather in Paris?", tools=[WEATHER_TOOL], stream=True
        )
    )
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert deltas == done.arguments and '"city"' in deltas  # type: ignore[union-attr]
    final: Response = events[-1].response  # type: ignore[union-attr]
    assert final.output[-1].type == "function_call" and final.output[-1].arguments == deltas  # type: ignore[union-attr]


def test_previous_response_id_carries_the_conversation(client: openai.OpenAI) -> None:
    first = client.responses.create(model="gpt-4o-mini", input="My name is Ada and I like long walks.")
    fresh = client.responses.create(model="gpt-4o-mini", input="What is my name?", store=False)
    follow = client.responses.create(
        model="gpt-4o-mini", input="What is my name?", previous_response_id=first.id
    )
    assert follow.usage is not None and fresh.usage is not None and first.usage is not None
    # The prior turn (question and answer) is part of the prompt the upstream saw.
    assert follow.usage.input_tokens > fresh.usage.input_tokens + first.usage.output_tokens


def test_retrieve_and_delete(client: openai.OpenAI) -> None:
    created = client.responses.create(model="gpt-4o-mini", input="keep me")
    fetched = client.responses.retrieve(created.id)
    assert fetched.model_dump() == created.model_dump()
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)


def test_store_false_is_not_kept(client: openai.OpenAI) -> None:
    created = client.responses.create(model="gpt-4o-mini", input="forget me", store=False)
    assert created.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_unknown_or_foreign_previous_response_is_404(gateway: GatewayProcess, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="gpt-4o-mini", input="x", previous_response_id="resp_nope")
    assert "resp_nope" in str(info.value)
    mine = client.responses.create(model="gpt-4o-mini", input="private")
    other = openai.OpenAI(
        base_url=gateway.url + "/v1", api_key=gateway.create_key("responses-other"), max_retries=0
    )
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="gpt-4o-mini", input="x", previous_response_id=mine.id)


def test_unsupported_requests_are_400_in_openai_shape(gateway: GatewayProcess, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    cases = [
        ({"model": "gpt-4o-mini", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"model": "gpt-4o-mini", "input": "x", "not_a_field": 1}, "not_a_field"),
        ({"model": "gpt-4o-mini", "input": "x", "max_output_tokens": "5"}, "max_output_tokens"),
    ]
    for body, param in cases:
        response = httpx.post(gateway.url + "/v1/responses", json=body, headers=headers)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == param


def test_upstream_failure_mid_stream_is_response_failed(client: openai.OpenAI) -> None:
    stream = client.responses.create(
        model="gpt-4o-mini",
        input="a fairly long answer that will break halfway through",
        stream=True,
        extra_headers={"x-sim-fail-after-chunks": "2"},
    )
    events = list(stream)
    assert events[0].type == "response.created"
    assert events[-1].type == "response.failed"
    assert events[-1].response.error is not None  # type: ignore[union-attr]
