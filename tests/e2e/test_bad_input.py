"""Nothing a client sends crashes the server: every field of a valid request, top level and nested, set
in turn to each value of the wrong kind, answers a 4xx (or a 200 where the value is acceptable), never a
5xx, on every JSON surface, streamed and not. (It found a 500: a message role that was a list.)"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import httpx
import pytest

from tests.gateway_process import GatewayProcess

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
MESSAGES = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
VALID: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {
        "model": "gpt-4o-mini",
        "messages": MESSAGES,
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
        "messages": MESSAGES,
        "system": "s",
        "stop_sequences": ["x"],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto"},
        "metadata": {"user_id": "u"},
    },
    "/v1/responses": {"model": "gpt-4o-mini", "input": "hi", "max_output_tokens": 20, "instructions": "x"},
    "/v1/embeddings": {"model": "upstream:text-embedding-3-small", "input": "hello", "dimensions": 8},
    "/v1/completions": {"model": "gpt-3.5-turbo-instruct", "prompt": "hi", "max_tokens": 5},
    "/v1/messages/count_tokens": {"model": "gpt-4o-mini", "messages": MESSAGES, "system": "s"},
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
    "/v1/ai/tokens/count": {"model": "gpt-4o-mini", "messages": MESSAGES},
    "/v1/ai/cost/estimate": {"model": "gpt-4o-mini", "messages": MESSAGES, "expected_output_tokens": 10},
    "/v1/ai/cost/compare": {"models": ["gpt-4o-mini"], "text": "hi", "expected_output_tokens": 10},
}
STREAMED = {"/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/completions"}


def _paths(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Where to put a wrong value: every top-level field, and the fields of the first message, its first
    content part, the first tool and an object tool choice."""
    paths: list[tuple[Any, ...]] = [(name,) for name in body]
    nested = {"messages": body.get("messages"), "tools": body.get("tools")}
    for name, items in nested.items():
        if isinstance(items, list):
            paths += [(name, 0, field) for field in items[0]]
    if "messages" in body:
        paths += [("messages", 0, "content", 0, field) for field in ("type", "text")]
    if isinstance(body.get("tool_choice"), dict):
        paths += [("tool_choice", field) for field in body["tool_choice"]]
    return paths


def _with(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize("route", sorted(VALID))
def test_no_field_of_the_wrong_kind_is_a_5xx(gateway: GatewayProcess, route: str) -> None:
    key = gateway.create_key("bad-input")
    headers = {"Authorization": f"Bearer {key}", "x-api-key": key, "anthropic-version": "2023-06-01"}
    body = VALID[route]
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
