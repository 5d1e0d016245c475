"""A provider stream's `complete` flag, against the simulators and on a local model's stream: False while
events are still to come, True once the last one is in (set before the block holding it is yielded).
`api.streaming.write_sse` sends whatever is yielded after that with the end of the body, so a flag raised
early would hold back a stream's events, and one never raised would cost a send per stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import aiohttp
import pytest

from tollway.providers.anthropic import AnthropicProvider
from tollway.providers.base import ProviderConfig
from tollway.providers.local.chat import Generation
from tollway.providers.local.openai_chat import ChunkWriter, LocalStream
from tollway.providers.openai_compat import OpenAICompatProvider
from tollway.simulators.anthropic_sim import serve_anthropic_sim
from tollway.simulators.runner import serve_openai_sim
from tollway.types import ChatStream, ModelRequest, Target

KEY = "sk-stream-end"
TARGET = Target(model_id="sim:model", provider="sim", upstream_model="gpt-4o-mini")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def request(**fields: Any) -> ModelRequest:
    messages = [{"role": "user", "content": "tell me a longer story, please"}]
    return ModelRequest(body={"model": "m", "messages": messages, "stream": True, **fields})


async def flags(stream: ChatStream) -> list[bool]:
    """`complete` as each block is handed over."""
    return [stream.complete async for _block in stream]


def assert_raised_at_the_end(seen: list[bool], stream: ChatStream) -> None:
    assert len(seen) >= 1
    assert not any(seen[:-1]), seen  # never while more events were still to come
    assert stream.complete


@pytest.mark.parametrize("chunk_delay_ms", [0, 2])  # one read for the whole answer; a read per event
async def test_openai_stream(session: aiohttp.ClientSession, chunk_delay_ms: int) -> None:
    async with serve_openai_sim(api_key=KEY, chunk_delay_ms=chunk_delay_ms) as sim:
        config = ProviderConfig(name="sim", type="openai", options={"base_url": sim.url, "api_key": KEY})
        stream = await OpenAICompatProvider(config, session).chat_stream(request(), TARGET)
        assert not stream.complete
        assert_raised_at_the_end(await flags(stream), stream)


async def test_anthropic_stream(session: aiohttp.ClientSession) -> None:
    async with serve_anthropic_sim(api_key=KEY) as sim:
        config = ProviderConfig(name="sim", type="anthropic", options={"base_url": sim.url, "api_key": KEY})
        stream = await AnthropicProvider(config, session).chat_stream(request(max_tokens=50), TARGET)
        assert not stream.complete
        assert_raised_at_the_end(await flags(stream), stream)


@pytest.mark.parametrize("with_usage", [False, True])
async def test_local_stream(with_usage: bool) -> None:
    async def pieces() -> AsyncGenerator[object, None]:  # what the pool yields: text, then the outcome
        for item in ("Hel", "lo", Generation("Hello", "stop", 5, 2)):
            yield item

    generation = pieces()
    stream = await LocalStream.open(generation, ChunkWriter("chat", "local:m"), with_usage)
    assert not stream.complete
    seen = await flags(stream)
    assert len(seen) == (5 if with_usage else 4)  # role, two pieces, finish (, usage)
    assert_raised_at_the_end(seen[: seen.index(True) + 1], stream)  # raised with the finish chunk
    assert all(seen[seen.index(True) :])
