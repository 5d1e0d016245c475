"""The Anthropic surface, end to end: the official `anthropic` SDK -> a real `tollway serve` process -> the
OpenAI simulator (translated both ways) and the Anthropic simulator (passed through natively)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.gateway_process import ANTHROPIC_UPSTREAM_KEY, GatewayProcess, running_gateway, two_backend_config
from tollway.simulators.anthropic_sim import serve_anthropic_sim
from tollway.simulators.runner import SimulatorThread

OPENAI_BACKED = "gpt-4o-mini"
ANTHROPIC_BACKED = "claude-sonnet-4-6"
BOTH = pytest.mark.parametrize("model", [OPENAI_BACKED, ANTHROPIC_BACKED])


def tool(name: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    return {"name": name, "description": f"{name} for a city", "input_schema": schema}


TOOLS = [tool("get_weather"), tool("get_time")]


@pytest.fixture(scope="module")
def anthropic_sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(serve_anthropic_sim, api_key=ANTHROPIC_UPSTREAM_KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def two_backend_gateway(
    openai_sim: SimulatorThread, anthropic_sim: SimulatorThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    data_dir: Path = tmp_path_factory.mktemp("anthropic-surface")
    env = {"ANTHROPIC_UPSTREAM_KEY": ANTHROPIC_UPSTREAM_KEY}
    with running_gateway(data_dir, two_backend_config(openai_sim.url, anthropic_sim.url), env) as process:
        yield process


@pytest.fixture(scope="module")
def key(two_backend_gateway: GatewayProcess) -> str:
    return two_backend_gateway.create_key("anthropic-e2e")


@pytest.fixture(scope="module")
def client(two_backend_gateway: GatewayProcess, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=two_backend_gateway.url, api_key=key, max_retries=0)


@BOTH
def test_message(client: anthropic.Anthropic, model: str) -> None:
    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "Hello there"}]
    )
    message = raw.parse()
    assert message.id.startswith("msg_")
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: Hello there"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert raw.headers["x-tollway-backend"] == ("claude" if model == ANTHROPIC_BACKED else "upstream")


@BOTH
def test_stream_matches_unstreamed(client: anthropic.Anthropic, model: str) -> None:
    kwargs: dict[str, Any] = {
        "model": model,
        "max_tokens": 200,
        "messages": [{"role": "user", "content": "Tell me about streaming in some detail please"}],
    }
    whole = client.messages.create(**kwargs)
    with client.messages.stream(**kwargs) as stream:
        names = [event.type for event in stream]
        streamed = stream.get_final_message()
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert [b.model_dump() for b in streamed.content] == [b.model_dump() for b in whole.content]
    assert streamed.stop_reason == whole.stop_reason
    assert streamed.usage.input_tokens == whole.usage.input_tokens
    assert streamed.usage.output_tokens == whole.usage.output_tokens


def _tool_uses(message: anthropic.types.Message) -> list[tuple[str, Any]]:
    return [(block.name, block.input) for block in message.content if block.type == "tool_use"]


@BOTH
def test_tool_round_trip_with_two_parallel_tools(client: anthropic.Anthropic, model: str) -> None:
    question: Any = [{"role": "user", "content": "Please call get_weather and get_time for Paris"}]
    first = client.messages.create(model=model, max_tokens=300, tools=TOOLS, messages=question)  # type: ignore[arg-type]
    assert first.stop_reason == "tool_use"
    assert _tool_uses(first) == [("get_weather", {"city": "Paris"}), ("get_time", {"city": "Paris"})]
    with client.messages.stream(model=model, max_tokens=300, tools=TOOLS, messages=question) as stream:  # type: ignore[arg-type]
        streamed = stream.get_final_message()
    assert _tool_uses(streamed) == _tool_uses(first)
    assert streamed.stop_reason == "tool_use"
    assert (streamed.usage.input_tokens, streamed.usage.output_tokens) == (
        first.usage.input_tokens,
        first.usage.output_tokens,
    )
    ids = [block.id for block in first.content if block.type == "tool_use"]
    results = [
        {"type": "tool_result", "tool_use_id": ids[0], "content": "18C and sunny"},
        {"type": "tool_result", "tool_use_id": ids[1], "content": "10:30"},
    ]
    answer = client.messages.create(
        model=model,
        max_tokens=300,
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[
            *question,
            {"role": "assistant", "content": [block.model_dump() for block in first.content]},
            {"role": "user", "content": results},
        ],
    )
    assert answer.stop_reason == "end_turn"
    assert answer.content[0].type == "text"
    assert answer.content[0].text == "Tool results: 18C and sunny | 10:30"


@pytest.mark.parametrize(("model", "fail"), [(OPENAI_BACKED, "503"), (ANTHROPIC_BACKED, "529")])
def test_overloaded_upstream_is_overloaded_error(client: anthropic.Anthropic, model: str, fail: str) -> None:
    for stream in (False, True):
        with pytest.raises(anthropic.APIStatusError) as caught:
            client.messages.create(
                model=model,
                max_tokens=10,
                stream=stream,
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"x-sim-fail": fail},
            )
        assert caught.value.status_code == 503
        body: Any = caught.value.body
        assert body["type"] == "error"
        assert body["error"]["type"] == "overloaded_error"


def test_rate_limited_upstream_keeps_retry_after(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(
            model=ANTHROPIC_BACKED,
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-sim-fail": "429"},
        )
    body: Any = caught.value.body
    assert body["error"]["type"] == "rate_limit_error"
    assert caught.value.response.headers["retry-after"] == "1"


def test_failure_mid_stream_is_an_error_event(client: anthropic.Anthropic) -> None:
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        stream = client.messages.create(
            model=ANTHROPIC_BACKED,
            max_tokens=100,
            stream=True,
            messages=[{"role": "user", "content": "a sentence long enough to stream in pieces"}],
            extra_headers={"x-sim-fail-after-events": "4"},
        )
        for event in stream:
            seen.append(event.type)
    assert seen[0] == "message_start"
    body: Any = caught.value.body
    assert body["error"]["type"] == "overloaded_error"


def test_errors_in_anthropic_shape(two_backend_gateway: GatewayProcess, key: str) -> None:
    url = two_backend_gateway.url + "/v1/messages"
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    no_max_tokens = {"model": OPENAI_BACKED, "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(url, json=no_max_tokens, headers=headers)
    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }
    extra = {**no_max_tokens, "max_tokens": 5, "frequency_penalty": 1}
    response = httpx.post(url, json=extra, headers=headers)
    assert response.json()["error"]["message"] == "frequency_penalty: Extra inputs are not permitted"
    response = httpx.post(url, json={**no_max_tokens, "max_tokens": 5}, headers={"x-api-key": "sk-wrong"})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    bearer = {"authorization": f"Bearer {key}"}
    response = httpx.post(url, json={**no_max_tokens, "max_tokens": 5}, headers=bearer)
    assert response.status_code == 200
    unknown = {**no_max_tokens, "max_tokens": 5, "model": "no-such-model"}
    response = httpx.post(url, json=unknown, headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


@BOTH
def test_count_tokens(client: anthropic.Anthropic, model: str) -> None:
    messages: Any = [{"role": "user", "content": "How many tokens is this sentence?"}]
    counted = client.messages.count_tokens(model=model, messages=messages)
    assert counted.input_tokens > 0
    if model == ANTHROPIC_BACKED:  # Anthropic's own count: what the message is billed for
        assert (
            counted.input_tokens
            == client.messages.create(model=model, max_tokens=5, messages=messages).usage.input_tokens
        )


def test_anthropic_upstream_gets_the_callers_body(
    client: anthropic.Anthropic, anthropic_sim: SimulatorThread
) -> None:
    system: Any = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    client.messages.create(
        model=ANTHROPIC_BACKED,
        max_tokens=20,
        system=system,
        metadata={"user_id": "u-1"},
        messages=[{"role": "user", "content": "pass me through"}],
    )
    sent = anthropic_sim.server.sim.requests[-1]["body"]
    assert sent == {
        "model": ANTHROPIC_BACKED,
        "max_tokens": 20,
        "system": system,
        "metadata": {"user_id": "u-1"},
        "messages": [{"role": "user", "content": "pass me through"}],
    }
