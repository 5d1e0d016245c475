"""The OpenAI simulator, driven through the official ``openai`` SDK as the gateway's tests will drive it."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from tollway.simulators import RunningOpenAISim, SimulatorThread, serve_openai_sim
from tollway.simulators.runner import build_parser

KEY = "sk-sim-test-key-0001"
USER_HELLO: Any = [{"role": "user", "content": "Hello there, world!"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}


@pytest.fixture
async def sim() -> AsyncIterator[RunningOpenAISim]:
    async with serve_openai_sim(api_key=KEY) as running:
        yield running


@pytest.fixture
async def client(sim: RunningOpenAISim) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=sim.url, api_key=KEY, max_retries=0, timeout=5) as sdk:
        yield sdk


async def _stream_text(client: AsyncOpenAI, **kwargs: Any) -> tuple[str, list[Any]]:
    stream = await client.chat.completions.create(stream=True, **kwargs)
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


async def _eventually(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    assert condition()


# ---- chat ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_chat_echoes_the_last_user_message(client: AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(model="gpt-4o-mini", messages=USER_HELLO)
    assert reply.id.startswith("chatcmpl-")
    assert reply.object == "chat.completion"
    assert reply.model == "gpt-4o-mini"
    assert reply.system_fingerprint and reply.service_tier == "default"
    choice = reply.choices[0]
    assert choice.message.content == "Echo: Hello there, world!"
    assert choice.finish_reason == "stop"
    usage = reply.usage
    assert usage is not None
    # "Echo", ":", " Hello", " there", ",", " world", "!" -> 7; prompt: 3 + (3 + 5) = 11
    assert (usage.completion_tokens, usage.prompt_tokens, usage.total_tokens) == (7, 11, 18)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0


@pytest.mark.asyncio
async def test_stream_matches_the_whole_answer(client: AsyncOpenAI) -> None:
    whole = await client.chat.completions.create(model="gpt-4o-mini", messages=USER_HELLO, max_tokens=4)
    text, chunks = await _stream_text(
        client, model="gpt-4o-mini", messages=USER_HELLO, max_tokens=4, stream_options={"include_usage": True}
    )
    assert text == whole.choices[0].message.content == "Echo: Hello there"
    first, last = chunks[0], chunks[-1]
    assert first.object == "chat.completion.chunk"
    assert first.choices[0].delta.role == "assistant" and first.choices[0].delta.content == ""
    assert chunks[-2].choices[0].finish_reason == whole.choices[0].finish_reason == "length"
    assert last.choices == [] and last.usage == whole.usage
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.asyncio
async def test_stream_wire_format_and_forced_chunk_count(sim: RunningOpenAISim) -> None:
    body = {"model": "gpt-4o-mini", "messages": USER_HELLO, "stream": True}
    headers = {"Authorization": f"Bearer {KEY}", "x-sim-stream-chunks": "3"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{sim.url}/chat/completions", json=body, headers=headers) as resp,
    ):
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        raw = (await resp.read()).decode()
    frames = raw.split("\n\n")
    assert frames[-2:] == ["data: [DONE]", ""]
    events = [json.loads(f.removeprefix("data: ")) for f in frames[:-2]]
    contents = [e["choices"][0]["delta"].get("content") for e in events[1:-1]]
    assert len(contents) == 3 and "".join(contents) == "Echo: Hello there, world!"
    assert "usage" not in events[0]


@pytest.mark.asyncio
async def test_n_choices_logprobs_and_images(client: AsyncOpenAI) -> None:
    parts: Any = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk="}},
    ]
    reply = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": parts}], n=2, logprobs=True, top_logprobs=2
    )
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.choices[1].message.content == "Echo: what is this? (I see 1 image)"
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert "".join(t.token for t in logprobs.content) == reply.choices[0].message.content
    assert len(logprobs.content[0].top_logprobs) == 2
    assert reply.usage is not None and reply.usage.completion_tokens == 2 * len(logprobs.content)


@pytest.mark.asyncio
async def test_json_modes_answer_valid_json(client: AsyncOpenAI) -> None:
    schema: Any = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["city", "n"],
    }
    reply = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER_HELLO,
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}},
    )
    assert json.loads(reply.choices[0].message.content or "") == {"city": "Paris", "n": 1}
    with pytest.raises(openai.BadRequestError, match="must contain the word 'json'"):
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=USER_HELLO, response_format={"type": "json_object"}
        )


# ---- tools ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_tool_call_round_trip(client: AsyncOpenAI) -> None:
    ask: list[Any] = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = await client.chat.completions.create(model="gpt-4o-mini", messages=ask, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = choice.message.tool_calls or []
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "c"}

    history = [
        *ask,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    second = await client.chat.completions.create(model="gpt-4o-mini", messages=history, tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert "18C and sunny" in (second.choices[0].message.content or "")


@pytest.mark.asyncio
async def test_streamed_tool_call_arguments_arrive_in_pieces(client: AsyncOpenAI) -> None:
    _, chunks = await _stream_text(
        client, model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL]
    )
    deltas = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    head = deltas[0]
    assert head.id and head.function and head.function.name == "get_weather" and head.function.arguments == ""
    fragments = [d.function.arguments for d in deltas[1:] if d.function and d.function.arguments]
    assert len(fragments) > 1
    assert json.loads("".join(fragments)) == {"city": "Paris", "unit": "c"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.asyncio
async def test_parallel_tool_calls_one_per_tool_mentioned(client: AsyncOpenAI) -> None:
    time_tool: Any = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
    ask: Any = [{"role": "user", "content": "get_weather and get_time for Paris"}]
    both = await client.chat.completions.create(
        model="gpt-4o-mini", messages=ask, tools=[WEATHER_TOOL, time_tool]
    )
    names = [c.function.name for c in both.choices[0].message.tool_calls or [] if c.type == "function"]
    assert names == ["get_weather", "get_time"]
    one = await client.chat.completions.create(
        model="gpt-4o-mini", messages=ask, tools=[WEATHER_TOOL, time_tool], parallel_tool_calls=False
    )
    assert len(one.choices[0].message.tool_calls or []) == 1
    forced = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER_HELLO,
        tools=[WEATHER_TOOL, time_tool],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    calls = forced.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls if c.type == "function"] == ["get_time"]
    text = await client.chat.completions.create(
        model="gpt-4o-mini", messages=ask, tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert text.choices[0].message.tool_calls is None


# ---- validation ----------------------------------------------------------------------------------

ORPHAN_TOOL = [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_1", "content": "x"}]
UNANSWERED = [
    {"role": "user", "content": "hi"},
    {
        "role": "assistant",
        "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    },
    {"role": "user", "content": "well?"},
]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("kwargs", "message", "param"),
    [
        ({"extra_body": {"top_k": 5}}, "Unrecognized request argument supplied: top_k", None),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "Invalid value: 'robot'", "messages[0].role"),
        (
            {"messages": ORPHAN_TOOL},
            "must be a response to a preceeding message with 'tool_calls'",
            "messages.[1].role",
        ),
        ({"messages": UNANSWERED}, "did not have response messages: call_9", "messages.[1].role"),
        (
            {"stream_options": {"include_usage": True}},
            "only allowed when 'stream' is enabled",
            "stream_options",
        ),
        ({"temperature": "hot"}, "expected a decimal, but got a string", "temperature"),
        ({"n": 0}, "integer below minimum value", "n"),
        ({"messages": []}, "empty array", "messages"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "array too long", "stop"),
        ({"tool_choice": "auto"}, "only allowed when 'tools' are specified", "tool_choice"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
            "Missing required parameter: 'response_format.json_schema.name'",
            "response_format.json_schema.name",
        ),
    ],
)
async def test_invalid_chat_requests_are_refused_like_openai(
    client: AsyncOpenAI, kwargs: dict[str, Any], message: str, param: str | None
) -> None:
    request: dict[str, Any] = {"model": "gpt-4o-mini", "messages": USER_HELLO, **kwargs}
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(**request)
    error = caught.value
    assert message in error.message
    assert error.param == param
    assert error.type == "invalid_request_error"


@pytest.mark.asyncio
async def test_extra_fields_are_configurable() -> None:
    async with (
        serve_openai_sim(extra_fields=["top_k"]) as vllm_like,
        AsyncOpenAI(base_url=vllm_like.url, api_key="any", max_retries=0) as client,
    ):
        reply = await client.chat.completions.create(
            model="gpt-4o-mini", messages=USER_HELLO, extra_body={"top_k": 5}
        )
        assert reply.choices[0].message.content
        recorded = vllm_like.sim.recorder.entries()[-1]
        assert recorded["body"]["top_k"] == 5


@pytest.mark.asyncio
async def test_unknown_model_and_wrong_endpoint(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="gpt-9", messages=USER_HELLO)
    assert caught.value.code == "model_not_found"
    assert "The model `gpt-9` does not exist" in caught.value.message
    with pytest.raises(openai.NotFoundError, match="not a chat model"):
        await client.chat.completions.create(model="gpt-3.5-turbo-instruct", messages=USER_HELLO)
    models = await client.models.list()
    assert "text-embedding-3-large" in [m.id for m in models.data]


@pytest.mark.asyncio
async def test_authentication(sim: RunningOpenAISim) -> None:
    async with AsyncOpenAI(base_url=sim.url, api_key="sk-not-the-right-one", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError) as caught:
            await wrong.models.list()
    assert caught.value.code == "invalid_api_key"
    assert "Incorrect API key provided: sk-" in caught.value.message
    async with aiohttp.ClientSession() as http, http.get(f"{sim.url}/models") as resp:
        assert resp.status == 401
        assert "You didn't provide an API key" in (await resp.json())["error"]["message"]


@pytest.mark.asyncio
async def test_malformed_json_is_refused(sim: RunningOpenAISim) -> None:
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{sim.url}/chat/completions", data=b"{not json", headers=headers) as resp,
    ):
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["message"].startswith("We could not parse the JSON body of your request.")
    assert set(error) == {"message", "type", "param", "code"}


# ---- legacy completions and embeddings -----------------------------------------------------------


@pytest.mark.asyncio
async def test_completions_whole_and_streamed(client: AsyncOpenAI) -> None:
    whole = await client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Say this is a test", echo=True
    )
    assert whole.object == "text_completion"
    assert whole.choices[0].text == "Say this is a testEcho: Say this is a test"
    stream = await client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt=["one", "two"], max_tokens=2, stream=True
    )
    pieces: dict[int, str] = {0: "", 1: ""}
    async for chunk in stream:
        for c in chunk.choices:
            pieces[c.index] += c.text
    assert pieces == {0: "Echo:", 1: "Echo:"}


@pytest.mark.asyncio
async def test_embeddings_float_base64_and_dimensions(client: AsyncOpenAI) -> None:
    floats = await client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    vector = floats.data[0].embedding
    assert len(vector) == 1536 and math.isclose(sum(x * x for x in vector), 1.0, rel_tol=1e-6)
    assert floats.usage.prompt_tokens == 2

    raw = await client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input="alpha", encoding_format="base64"
    )
    encoded = json.loads(raw.content)["data"][0]["embedding"]
    decoded = struct.unpack("<1536f", base64.b64decode(encoded))
    assert all(math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-7) for a, b in zip(decoded, vector, strict=True))

    short = await client.embeddings.create(model="text-embedding-3-large", input="alpha", dimensions=256)
    assert len(short.data[0].embedding) == 256
    with pytest.raises(openai.BadRequestError, match=r"'\$\.input' is invalid"):
        await client.embeddings.create(model="text-embedding-3-small", input="")


# ---- failure injection ---------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (409, openai.ConflictError),
        (422, openai.UnprocessableEntityError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
async def test_injected_failures_map_to_sdk_errors(
    client: AsyncOpenAI, status: int, error_class: type[openai.APIStatusError]
) -> None:
    with pytest.raises(error_class) as caught:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=USER_HELLO, extra_headers={"x-sim-fail": str(status)}
        )
    assert caught.value.status_code == status
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "1"
        assert caught.value.code == "rate_limit_exceeded"


@pytest.mark.asyncio
async def test_fail_times_lets_the_retry_succeed(sim: RunningOpenAISim) -> None:
    headers = {
        "x-sim-fail": "429",
        "x-sim-fail-times": "2",
        "x-sim-fail-key": "retry-test",
        "x-sim-retry-after": "0.01",  # the SDK honours retry-after, which keeps this test fast
    }
    async with AsyncOpenAI(base_url=sim.url, api_key=KEY, max_retries=2, default_headers=headers) as retrying:
        reply = await retrying.with_options(timeout=5).chat.completions.create(
            model="gpt-4o-mini", messages=USER_HELLO
        )
    assert reply.choices[0].message.content == "Echo: Hello there, world!"
    assert sim.sim.stats.errors_injected == 2


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("mode", "error_class"), [("close", openai.APIConnectionError), ("error-event", openai.APIError)]
)
async def test_stream_fails_after_chunks(
    client: AsyncOpenAI, mode: str, error_class: type[Exception]
) -> None:
    seen: list[str] = []
    with pytest.raises(error_class):
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=USER_HELLO,
            stream=True,
            extra_headers={"x-sim-fail-after-chunks": "3", "x-sim-fail-mode": mode},
        )
        async for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "")
    assert seen == ["", "Echo", ":"]


@pytest.mark.asyncio
async def test_latency_and_hang_observe_the_client(sim: RunningOpenAISim, client: AsyncOpenAI) -> None:
    started = time.perf_counter()
    await client.models.list(extra_headers={"x-sim-latency-ms": "150"})
    assert time.perf_counter() - started >= 0.15

    with pytest.raises(openai.APITimeoutError):
        await client.with_options(timeout=0.2).chat.completions.create(
            model="gpt-4o-mini", messages=USER_HELLO, extra_headers={"x-sim-hang": "1"}
        )
    await _eventually(lambda: sim.sim.stats.disconnects_observed == 1)

    with pytest.raises(openai.APITimeoutError):  # a client that gives up during the latency is seen too
        await client.with_options(timeout=0.05).models.list(extra_headers={"x-sim-latency-ms": "150"})
    await _eventually(lambda: sim.sim.stats.disconnects_observed == 2)
    assert sim.sim.stats.active_requests == 0


@pytest.mark.asyncio
async def test_paced_stream_stop_sequences_and_request_ids(
    sim: RunningOpenAISim, client: AsyncOpenAI
) -> None:
    started = time.perf_counter()
    text, _ = await _stream_text(
        client, model="gpt-4o-mini", messages=USER_HELLO, extra_headers={"x-sim-chunk-delay-ms": "20"}
    )
    assert text == "Echo: Hello there, world!" and time.perf_counter() - started >= 0.1
    assert sim.sim.stats.streams_completed == 1

    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=USER_HELLO, stop=","
    )
    assert raw.headers["x-request-id"].startswith("req_")
    stopped = raw.parse()
    assert stopped.choices[0].message.content == "Echo: Hello there"
    assert stopped.choices[0].finish_reason == "stop"

    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{sim.url}/assistants", headers={"Authorization": f"Bearer {KEY}"}) as resp,
    ):
        assert resp.status == 404
        assert (await resp.json())["error"]["message"] == "Invalid URL (POST /v1/assistants)"


@pytest.mark.asyncio
async def test_stopping_releases_hung_requests() -> None:
    async with aiohttp.ClientSession() as http:
        async with serve_openai_sim() as running:
            hung = asyncio.create_task(
                http.get(f"{running.url}/models", headers={"Authorization": "Bearer k", "x-sim-hang": "1"})
            )
            await _eventually(lambda: running.sim.stats.hangs_started == 1)
            started = time.perf_counter()
        assert time.perf_counter() - started < 1.0
        with pytest.raises(aiohttp.ClientError):
            await hung
    assert running.sim.stats.disconnects_observed == 0


# ---- introspection, threads, command line --------------------------------------------------------


@pytest.mark.asyncio
async def test_recorded_requests_hide_keys(sim: RunningOpenAISim, client: AsyncOpenAI) -> None:
    await client.chat.completions.create(model="gpt-4o-mini", messages=USER_HELLO, user="u-1")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sim.base_url}/_sim/requests") as resp:
            entries = (await resp.json())["data"]
        async with http.delete(f"{sim.base_url}/_sim/requests") as resp:
            assert resp.status == 204
        async with http.get(f"{sim.base_url}/_sim/stats") as resp:
            stats = await resp.json()
    entry = entries[-1]
    assert entry["method"] == "POST" and entry["path"] == "/v1/chat/completions"
    assert entry["body"]["user"] == "u-1"
    auth = entry["headers"]["authorization"]
    assert auth.startswith("sha256:") and KEY not in json.dumps(entries)
    assert sim.sim.recorder.entries() == []
    assert stats["requests_total"] == 1 and stats["active_requests"] == 0


def test_simulator_thread_serves_sync_clients() -> None:
    with SimulatorThread(record=False) as thread:
        with openai.OpenAI(base_url=thread.url, api_key="any", max_retries=0) as client:
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "sync"}]
            )
        assert reply.choices[0].message.content == "Echo: sync"
        assert thread.url.endswith("/v1") and thread.port > 0


def test_command_line_parses_openai_options() -> None:
    args = build_parser().parse_args(
        [
            "openai",
            "--port",
            "9111",
            "--api-key",
            "k",
            "--latency-ms",
            "5",
            "--stream-chunks",
            "4",
            "--no-record",
        ]
    )
    assert (args.kind, args.port, args.api_key, args.latency_ms, args.stream_chunks, args.no_record) == (
        "openai",
        9111,
        "k",
        5.0,
        4,
        True,
    )
