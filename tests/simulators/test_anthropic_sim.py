"""The Anthropic simulator, driven by the official `anthropic` SDK (raw HTTP where the SDK hides things)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest

from tollway.simulators.anthropic_sim import RunningAnthropicSim, serve_anthropic_sim

WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME = {
    "name": "get_time",
    "description": "Current time in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
MODEL = "claude-sonnet-4-6"


@pytest.fixture
async def sim() -> AsyncIterator[RunningAnthropicSim]:
    async with serve_anthropic_sim(api_key="sk-ant-test") as running:
        yield running


@pytest.fixture
def client(sim: RunningAnthropicSim) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=sim.url, api_key="sk-ant-test", max_retries=0)


async def test_echo_message(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Hello there"}]
    )
    assert message.id.startswith("msg_")
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: Hello there"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens == 4  # "Echo", ":", " Hello", " there"


async def test_stream_equals_unstreamed(client: anthropic.AsyncAnthropic) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 200,
        "messages": [{"role": "user", "content": "What's the weather and the time in Paris? use get_time"}],
        "tools": [WEATHER, TIME],
    }
    plain = await client.messages.create(**kwargs)
    async with client.messages.stream(**kwargs) as stream:
        streamed = await stream.get_final_message()
    assert plain.stop_reason == streamed.stop_reason == "tool_use"
    assert [b.model_dump() for b in plain.content] == [b.model_dump() for b in streamed.content]
    assert plain.usage.input_tokens == streamed.usage.input_tokens
    assert plain.usage.output_tokens == streamed.usage.output_tokens
    tool_uses = [b for b in plain.content if b.type == "tool_use"]
    assert [b.name for b in tool_uses] == ["get_weather", "get_time"]
    assert tool_uses[0].input == {"city": "Paris"}


async def test_raw_event_sequence(sim: RunningAnthropicSim) -> None:
    body = {
        "model": MODEL,
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "weather please"}],
        "tools": [WEATHER],
    }
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sim.url}/v1/messages", json=body, headers=headers) as response,
    ):
        text = (await response.read()).decode()
    names = [line.removeprefix("event: ") for line in text.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 2
    assert text.count('"input_json_delta"') >= 3  # an empty fragment, then several pieces


async def test_tool_round_trip(client: anthropic.AsyncAnthropic) -> None:
    first = await client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "weather in Paris?"}],
    )
    use = next(b for b in first.content if b.type == "tool_use")
    second = await client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18C sunny"}],
            },
        ],
    )
    assert second.content[0].type == "text"
    assert second.content[0].text == "Tool results: 18C sunny"


async def test_missing_tool_result_is_rejected(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(
            model=MODEL,
            max_tokens=10,
            messages=[
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_1", "name": "x", "input": {}}],
                },
                {"role": "user", "content": "no result"},
            ],
        )
    assert "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1" in str(
        caught.value
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"foo": 1}, "foo: Extra inputs are not permitted"),
        ({"temperature": 1.5}, "temperature: Input should be less than or equal to 1"),
    ],
)
async def test_validation(client: anthropic.AsyncAnthropic, extra: dict[str, Any], message: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}], extra_body=extra
        )
    assert caught.value.body["error"]["message"] == message  # type: ignore[index]
    assert caught.value.body["type"] == "error"  # type: ignore[index]


async def test_headers_required(sim: RunningAnthropicSim) -> None:
    body = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{sim.url}/v1/messages", json=body) as response:
            assert response.status == 401
            assert (await response.json())["error"] == {
                "type": "authentication_error",
                "message": "x-api-key header is required",
            }
        async with session.post(
            f"{sim.url}/v1/messages", json=body, headers={"x-api-key": "sk-ant-test"}
        ) as response:
            assert response.status == 400
            assert (await response.json())["error"]["message"] == "anthropic-version: header is required"
        headers = {"authorization": "Bearer sk-ant-test", "anthropic-version": "2023-06-01"}
        async with session.post(f"{sim.url}/v1/messages", json={"model": MODEL}, headers=headers) as response:
            assert response.status == 400
            assert (await response.json())["error"]["message"] == "messages: Field required"


async def test_wrong_key(sim: RunningAnthropicSim) -> None:
    client = anthropic.AsyncAnthropic(base_url=sim.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        await client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        ("429", anthropic.RateLimitError, "rate_limit_error"),
        ("500", anthropic.InternalServerError, "api_error"),
        ("529", anthropic.InternalServerError, "overloaded_error"),
        ("401", anthropic.AuthenticationError, "authentication_error"),
    ],
)
async def test_injected_failures(
    client: anthropic.AsyncAnthropic, status: str, error: type[Exception], kind: str
) -> None:
    with pytest.raises(error) as caught:
        await client.messages.create(
            model=MODEL,
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-sim-fail": status},
        )
    assert isinstance(caught.value, anthropic.APIStatusError)
    assert caught.value.status_code == int(status)
    assert caught.value.body["error"]["type"] == kind  # type: ignore[index]
    if status == "429":
        assert caught.value.response.headers["retry-after"] == "1"


async def test_fail_mid_stream(client: anthropic.AsyncAnthropic) -> None:
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        stream = await client.messages.create(
            model=MODEL,
            max_tokens=50,
            stream=True,
            messages=[{"role": "user", "content": "a longer sentence to stream here"}],
            extra_headers={"x-sim-fail-after-events": "4"},
        )
        async for event in stream:
            seen.append(event.type)
    assert seen == ["message_start", "content_block_start", "content_block_delta"]  # ping is not surfaced
    assert "overloaded_error" in str(caught.value)


async def test_count_tokens_matches_usage(client: anthropic.AsyncAnthropic) -> None:
    messages: Any = [{"role": "user", "content": "count these words please"}]
    counted = await client.messages.count_tokens(model=MODEL, messages=messages, system="Be brief.")
    message = await client.messages.create(model=MODEL, max_tokens=10, messages=messages, system="Be brief.")
    assert counted.input_tokens == message.usage.input_tokens


async def test_stop_sequence_and_max_tokens(client: anthropic.AsyncAnthropic) -> None:
    messages: Any = [{"role": "user", "content": "one two three four five"}]
    stopped = await client.messages.create(
        model=MODEL, max_tokens=50, messages=messages, stop_sequences=["three"]
    )
    assert stopped.stop_reason == "stop_sequence"
    assert stopped.stop_sequence == "three"
    assert stopped.content[0].text == "Echo: one two "  # type: ignore[union-attr]
    cut = await client.messages.create(model=MODEL, max_tokens=3, messages=messages)
    assert cut.stop_reason == "max_tokens"
    assert cut.usage.output_tokens == 3


async def test_recorded_requests(sim: RunningAnthropicSim, client: anthropic.AsyncAnthropic) -> None:
    await client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert sim.sim.requests[-1]["body"]["max_tokens"] == 10
    async with aiohttp.ClientSession() as session, session.get(f"{sim.url}/_sim/requests") as response:
        recorded = (await response.json())["requests"]
    assert recorded[-1]["path"] == "/v1/messages"
