"""Nothing a client sends crashes the server: every field and array item of a valid request, at any depth,
set in turn to each value of the wrong kind, answers a 4xx (or a 200 where the value is acceptable), never
a 5xx, on every JSON surface, streamed and not. (It found 500s: roles and part types that were lists, tool
calls and tool results of the wrong shape.)"""

from __future__ import annotations

import copy
import itertools
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway_process import ANTHROPIC_UPSTREAM_KEY, GatewayProcess, running_gateway, two_backend_config
from tollway.simulators.anthropic_sim import serve_anthropic_sim
from tollway.simulators.runner import SimulatorThread

WRONG: list[Any] = [
    None,
    -1,
    0,
    2**64,
    1e308,
    "x",
    [],
    {},
    True,
    "x" * 5000,
    [1, "a", None],
    {"a": {"b": []}},
]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
# Conversations with every kind of part the surfaces translate: images, tool calls and their results.
OPENAI_MESSAGES = [
    {"role": "system", "content": "s"},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "hi"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG, "detail": "low"}},
        ],
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
]
ANTHROPIC_MESSAGES = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "hi"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        ],
    },
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "calling"},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "ok"}]}
        ],
    },
]
RESPONSES_INPUT = [
    {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "hi"},
            {"type": "input_image", "image_url": "data:image/png;base64," + PNG},
        ],
    },
    {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "c1", "output": "ok"},
]
ANTHROPIC_TOOLS = [{"name": "f", "input_schema": {"type": "object"}}]
VALID: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {
        "model": "gpt-4o-mini",
        "messages": OPENAI_MESSAGES,
        "max_tokens": 5,
        "temperature": 0.5,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "auto",
        "n": 1,
        "stop": ["x"],
        "response_format": {"type": "text"},
        "seed": 1,
    },
    "/v1/messages": {
        "model": "gpt-4o-mini",
        "max_tokens": 5,
        "messages": ANTHROPIC_MESSAGES,
        "system": "s",
        "stop_sequences": ["x"],
        "tools": ANTHROPIC_TOOLS,
        "tool_choice": {"type": "auto"},
        "metadata": {"user_id": "u"},
    },
    "/v1/responses": {
        "model": "gpt-4o-mini",
        "input": RESPONSES_INPUT,
        "max_output_tokens": 20,
        "instructions": "x",
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        "include": ["message.output_text.logprobs"],
        "reasoning": {"effort": "low"},
        "metadata": {"k": "v"},
        "store": True,
    },
    "/v1/embeddings": {"model": "upstream:text-embedding-3-small", "input": "hello", "dimensions": 8},
    "/v1/completions": {"model": "gpt-3.5-turbo-instruct", "prompt": "hi", "max_tokens": 5},
    "/v1/messages/count_tokens": {
        "model": "gpt-4o-mini",
        "messages": ANTHROPIC_MESSAGES,
        "tools": ANTHROPIC_TOOLS,
    },
    "/v1/images/generations": {
        "model": "upstream:dall-e-3",
        "prompt": "a lighthouse",
        "n": 1,
        "size": "1024x1024",
    },
    "/v1/audio/speech": {
        "model": "upstream:tts-1",
        "voice": "alloy",
        "input": "hello",
        "response_format": "mp3",
    },
    "/v1/ai/tokens/count": {"model": "gpt-4o-mini", "messages": OPENAI_MESSAGES},
    "/v1/ai/cost/estimate": {
        "model": "gpt-4o-mini",
        "messages": OPENAI_MESSAGES,
        "expected_output_tokens": 10,
    },
    "/v1/ai/cost/compare": {"models": ["gpt-4o-mini"], "text": "hi", "expected_output_tokens": 10},
}
STREAMED = {"/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/completions"}
CONVERSATIONS = {"/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/messages/count_tokens"}


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in the request a wrong value can go: each field and each array item, at any depth."""
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    for step, child in children:
        yield (*path, step)
        yield from _paths(child, (*path, step))


def _with(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


@pytest.fixture(scope="module")
def claude_gateway(
    openai_sim: SimulatorThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """A gateway whose claude-sonnet-4-6 is served by the Anthropic simulator: chat requests to it are
    rebuilt part by part (`formats.anthropic.chat_to_messages`), not passed through."""
    env = {"ANTHROPIC_UPSTREAM_KEY": ANTHROPIC_UPSTREAM_KEY}
    with (
        SimulatorThread(serve_anthropic_sim, api_key=ANTHROPIC_UPSTREAM_KEY) as anthropic_sim,
        running_gateway(
            tmp_path_factory.mktemp("bad-input"), two_backend_config(openai_sim.url, anthropic_sim.url), env
        ) as process,
    ):
        yield process


@pytest.mark.parametrize("route", sorted(VALID))
def test_no_field_of_the_wrong_kind_is_a_5xx(gateway: GatewayProcess, route: str) -> None:
    _sweep(gateway, route, VALID[route])


@pytest.mark.parametrize("route", sorted(CONVERSATIONS))
def test_nor_when_an_anthropic_model_serves_the_call(claude_gateway: GatewayProcess, route: str) -> None:
    body = {name: value for name, value in VALID[route].items() if name != "include"}  # no logprobs there
    _sweep(claude_gateway, route, {**body, "model": "claude-sonnet-4-6"})


def _sweep(gateway: GatewayProcess, route: str, body: dict[str, Any]) -> None:
    key = gateway.create_key("bad-input")
    headers = {"Authorization": f"Bearer {key}", "x-api-key": key, "anthropic-version": "2023-06-01"}
    failures = []
    logged = gateway.logs().count("Traceback")  # a stream can fail after its 200: its log says so
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=30) as client:
        assert client.post(route, json=body).status_code == 200  # the base request is valid
        for stream in (False, True) if route in STREAMED else (False,):
            for path, value in itertools.product(_paths(body), WRONG):
                sent = {**_with(body, path, value), **({"stream": True} if stream else {})}
                answer = client.post(route, json=sent)
                if answer.status_code >= 500:
                    failures.append((path, repr(value)[:20], stream, answer.status_code, answer.text[:200]))
    assert not failures, failures
    assert gateway.logs().count("Traceback") == logged


def test_unparsable_http_is_a_400_and_one_log_line_without_its_bytes(gateway: GatewayProcess) -> None:
    secret = "tw-" + "s3cr3t" * 2000  # an over-long Authorization header: aiohttp would log its start
    port = int(gateway.url.rsplit(":", 1)[1])
    before = gateway.logs()
    for raw in (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\n\r\n".encode(),
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",  # TLS spoken to the plain port
    ):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(raw)
            answer = conn.recv(64)
        assert answer.startswith(b"HTTP/1.") and b" 400 " in answer, answer
    # Logged: the header line too long and the bad length (aiohttp does not log TLS bytes at all).
    logged = _log_since(gateway, before, "malformed HTTP request refused with 400", 2)
    assert logged.count("malformed HTTP request refused with 400") == 2, logged
    assert "Traceback" not in logged and "s3cr3t" not in logged


def _log_since(gateway: GatewayProcess, before: str, line: str, count: int) -> str:
    """What the gateway logged after `before`, once `line` is in it `count` times (or after 5 s)."""
    deadline = time.monotonic() + 5  # the gateway process writes its log as it goes
    logged = gateway.logs()[len(before) :]
    while logged.count(line) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        logged = gateway.logs()[len(before) :]
    return logged
