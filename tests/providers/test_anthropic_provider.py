"""AnthropicProvider against the Anthropic simulator: canonical and native calls, streams, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from tollway.errors import UpstreamError, UpstreamStatus, UpstreamTimeout, UpstreamUnavailable
from tollway.providers.anthropic import AnthropicProvider
from tollway.providers.base import ProviderConfig
from tollway.simulators.anthropic_sim import RunningAnthropicSim, serve_anthropic_sim
from tollway.types import ChatStream, ModelRequest, Target

KEY = "sk-ant-provider"
TARGET = Target(model_id="anthropic:claude-sonnet-4-6", provider="claude", upstream_model="claude-sonnet-4-6")
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    for name in ("get_weather", "get_time")
]


@pytest.fixture
async def sim() -> AsyncIterator[RunningAnthropicSim]:
    async with serve_anthropic_sim(api_key=KEY) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def provider(session: aiohttp.ClientSession, url: str, **options: Any) -> AnthropicProvider:
    config = ProviderConfig(
        name="claude", type="anthropic", options={"base_url": url, "api_key": KEY, **options}
    )
    return AnthropicProvider(config, session)


def chat_request(text: str, **fields: Any) -> ModelRequest:
    return ModelRequest(body={"model": "claude", "messages": [{"role": "user", "content": text}], **fields})


async def collect(stream: ChatStream) -> list[bytes]:
    return [block async for block in stream]


def chunks_of(blocks: list[bytes]) -> list[dict[str, Any]]:
    text = b"".join(blocks).decode()
    assert "[DONE]" not in text
    return [orjson.loads(line[6:]) for line in text.split("\n\n") if line.startswith("data: ")]


async def test_canonical_chat(sim: RunningAnthropicSim, session: aiohttp.ClientSession) -> None:
    result = await provider(session, sim.url).chat(chat_request("Hello world", max_tokens=50), TARGET)
    completion = result.json()
    assert result.format == "openai"
    assert completion["object"] == "chat.completion"
    assert completion["id"].startswith("chatcmpl-")
    assert completion["choices"][0]["message"]["content"] == "Echo: Hello world"
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert result.usage.output_tokens == completion["usage"]["completion_tokens"] == 4
    sent = sim.sim.requests[-1]["body"]
    assert sent["model"] == "claude-sonnet-4-6"
    assert sent["max_tokens"] == 50
    assert "stream" not in sent


async def test_default_max_tokens(sim: RunningAnthropicSim, session: aiohttp.ClientSession) -> None:
    await provider(session, sim.url, default_max_tokens=123).chat(chat_request("hi"), TARGET)
    assert sim.sim.requests[-1]["body"]["max_tokens"] == 123


async def test_stream_with_two_parallel_tools(
    sim: RunningAnthropicSim, session: aiohttp.ClientSession
) -> None:
    request = chat_request(
        "weather and get_time for Paris", tools=TOOLS, stream=True, stream_options={"include_usage": True}
    )
    claude = provider(session, sim.url)
    stream = await claude.chat_stream(request, TARGET)
    chunks = chunks_of(await collect(stream))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls") or []:
                slot = calls.setdefault(call["index"], {"id": call.get("id"), "name": "", "arguments": ""})
                slot["name"] += call.get("function", {}).get("name") or ""
                slot["arguments"] += call.get("function", {}).get("arguments") or ""
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert all(orjson.loads(call["arguments"]) == {"city": "Paris"} for call in calls.values())
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    # The streamed answer costs what the unstreamed one does.
    plain = await claude.chat(chat_request("weather and get_time for Paris", tools=TOOLS), TARGET)
    assert stream.usage == plain.usage
    assert chunks[-1]["usage"] == plain.json()["usage"]
    plain_calls = plain.json()["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["arguments"]) for c in plain_calls] == [
        (calls[i]["id"], calls[i]["arguments"]) for i in sorted(calls)
    ]


async def test_stream_without_usage_request_hides_usage_chunk(
    sim: RunningAnthropicSim, session: aiohttp.ClientSession
) -> None:
    stream = await provider(session, sim.url).chat_stream(chat_request("hi there", stream=True), TARGET)
    chunks = chunks_of(await collect(stream))
    assert all(chunk["choices"] for chunk in chunks)
    assert stream.usage is not None and stream.usage.output_tokens == 4


async def test_native_pass_through(sim: RunningAnthropicSim, session: aiohttp.ClientSession) -> None:
    native = {
        "model": "my-alias",
        "max_tokens": 20,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "native call"}],
    }
    request = ModelRequest(body={"model": "my-alias"}, native_format="anthropic", native_body=native)
    result = await provider(session, sim.url).chat(request, TARGET)
    assert result.format == "anthropic"
    assert result.json()["type"] == "message"
    assert result.json()["content"] == [{"type": "text", "text": "Echo: native call"}]
    assert result.raw is not None and orjson.loads(result.raw) == result.json()
    assert result.usage.output_tokens == result.json()["usage"]["output_tokens"]
    assert sim.sim.requests[-1]["body"] == {**native, "model": "claude-sonnet-4-6"}


async def test_native_stream_passes_events_untouched(
    sim: RunningAnthropicSim, session: aiohttp.ClientSession
) -> None:
    native = {
        "model": "x",
        "max_tokens": 20,
        "stream": True,
        "messages": [{"role": "user", "content": "hey you"}],
    }
    request = ModelRequest(body={"model": "x", "stream": True}, native_format="anthropic", native_body=native)
    stream = await provider(session, sim.url).chat_stream(request, TARGET)
    assert stream.format == "anthropic"
    text = b"".join(await collect(stream)).decode()
    assert text.startswith("event: message_start\ndata: ")
    assert text.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert "event: ping" in text
    assert stream.usage is not None and stream.usage.output_tokens == 4


@pytest.mark.parametrize(
    ("status", "expected_status", "kind"),
    [("429", 429, "rate_limit_error"), ("529", 503, "overloaded_error"), ("500", 500, "api_error")],
)
async def test_error_mapping(
    sim: RunningAnthropicSim, session: aiohttp.ClientSession, status: str, expected_status: int, kind: str
) -> None:
    claude = provider(session, sim.url, headers={"x-sim-fail": status})
    for call in (claude.chat, claude.chat_stream):
        with pytest.raises(UpstreamStatus) as caught:
            await call(chat_request("hi"), TARGET)
        error = caught.value
        assert error.http_status == expected_status
        assert error.family == kind
        assert error.backend == "claude"
        if status == "429":
            assert error.headers["retry-after"] == "1"


async def test_invalid_request_passes_upstream_message(
    sim: RunningAnthropicSim, session: aiohttp.ClientSession
) -> None:
    native = {"model": "x", "max_tokens": 20, "messages": [{"role": "system", "content": "no"}]}
    request = ModelRequest(body={"model": "x"}, native_format="anthropic", native_body=native)
    with pytest.raises(UpstreamStatus) as caught:
        await provider(session, sim.url).chat(request, TARGET)
    assert caught.value.http_status == 400
    assert caught.value.message == "messages.0.role: Input should be 'user' or 'assistant'"


async def test_wrong_key_is_401(sim: RunningAnthropicSim, session: aiohttp.ClientSession) -> None:
    with pytest.raises(UpstreamStatus) as caught:
        await provider(session, sim.url, api_key="wrong").chat(chat_request("hi"), TARGET)
    assert caught.value.http_status == 401
    assert caught.value.family == "authentication_error"


@pytest.mark.parametrize("native", [False, True])
async def test_failure_mid_stream(
    sim: RunningAnthropicSim, session: aiohttp.ClientSession, native: bool
) -> None:
    claude = provider(session, sim.url, headers={"x-sim-fail-after-events": "4"})
    body = {
        "model": "x",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "a b c d e"}],
    }
    request = (
        ModelRequest(body=body, native_format="anthropic", native_body=body)
        if native
        else chat_request("a b c d e", stream=True)
    )
    stream = await claude.chat_stream(request, TARGET)
    received: list[bytes] = []
    with pytest.raises(UpstreamStatus) as caught:
        async for block in stream:
            received.append(block)
    assert caught.value.http_status == 503
    assert caught.value.family == "overloaded_error"
    assert received  # the events before the failure reached the caller
    await stream.aclose()


async def test_unreachable(session: aiohttp.ClientSession) -> None:
    claude = provider(session, "http://127.0.0.1:9")
    with pytest.raises(UpstreamUnavailable) as caught:
        await claude.chat(chat_request("hi"), TARGET)
    assert "Backend 'claude' is unreachable" in caught.value.message


async def test_timeout(sim: RunningAnthropicSim, session: aiohttp.ClientSession) -> None:
    claude = provider(session, sim.url, timeout=0.2, headers={"x-sim-latency-ms": "1000"})
    with pytest.raises(UpstreamTimeout):
        await claude.chat(chat_request("hi"), TARGET)


async def test_count_tokens(sim: RunningAnthropicSim, session: aiohttp.ClientSession) -> None:
    claude = provider(session, sim.url)
    native = {"model": "x", "messages": [{"role": "user", "content": "count me"}]}
    counted = await claude.count_tokens(native, TARGET)
    request = ModelRequest(
        body={"model": "x"}, native_format="anthropic", native_body={**native, "max_tokens": 5}
    )
    result = await claude.chat(request, TARGET)
    assert counted == {"input_tokens": result.json()["usage"]["input_tokens"]}


async def test_unsupported_canonical_field_is_400_before_any_call(
    sim: RunningAnthropicSim, session: aiohttp.ClientSession
) -> None:
    before = len(sim.sim.requests)
    with pytest.raises(Exception) as caught:
        await provider(session, sim.url).chat(chat_request("hi", n=2), TARGET)
    assert not isinstance(caught.value, UpstreamError)
    assert getattr(caught.value, "status", None) == 400
    assert len(sim.sim.requests) == before


async def test_forwarded_client_headers(sim: RunningAnthropicSim, session: aiohttp.ClientSession) -> None:
    claude = provider(session, sim.url, forward_headers=["x-sim-*"])
    request = chat_request("hi")
    request.client_headers = {"x-sim-fail": "529", "x-api-key": "caller-key-never-forwarded"}
    with pytest.raises(UpstreamStatus) as caught:
        await claude.chat(request, TARGET)
    assert caught.value.family == "overloaded_error"
    request.client_headers = {"x-api-key": "caller-key-never-forwarded"}
    assert (await claude.chat(request, TARGET)).json()["choices"][0]["message"]["content"] == "Echo: hi"
