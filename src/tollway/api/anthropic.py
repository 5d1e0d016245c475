"""POST /v1/messages and POST /v1/messages/count_tokens: Anthropic's Messages API on any upstream.

The caller's body is validated as Anthropic would, translated to the canonical chat body, and kept as
`native_body`: an Anthropic upstream receives it untouched and its answer (JSON or events) is passed
back as is; any other upstream answers in the canonical shape, translated here into a Message or into
Anthropic's event stream. Errors are rendered in Anthropic's shape by the middleware (before the stream
starts) or as an `event: error` (after).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from tollway.api.errors import anthropic_error
from tollway.api.http import (
    authenticate,
    bytes_response,
    json_response,
    read_json_object,
    request_id,
    services,
)
from tollway.api.streaming import write_sse
from tollway.errors import TollwayError
from tollway.formats.anthropic import chat_completion_to_message, messages_to_chat, validate_messages_request
from tollway.formats.anthropic_stream import ChatChunksToAnthropic, sse_event
from tollway.pipeline import Call, MeteredStream
from tollway.pipeline.auth import require_scope
from tollway.pipeline.routing import route
from tollway.providers.sse import iter_event_payloads
from tollway.types import ModelRequest, Operation, Surface


def anthropic_error_event(exc: TollwayError) -> bytes:
    return sse_event("error", anthropic_error(exc))


async def messages(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body, _raw = await read_json_object(request)
    chat = messages_to_chat(body)
    call = Call(
        request_id=request_id(request),
        surface=Surface.ANTHROPIC,
        operation=Operation.CHAT,
        principal=principal,
    )
    model_request = ModelRequest(
        body=chat, native_format="anthropic", native_body=body, client_headers=request.headers
    )
    gateway = services(request).gateway
    if model_request.stream:
        stream = await gateway.run_stream(call, model_request)
        events = aiter(stream) if stream.format == "anthropic" else _anthropic_events(stream)
        return await write_sse(request, call, stream, events, anthropic_error_event)
    result = await gateway.run_json(call, model_request)
    if result.format == "anthropic":
        return bytes_response(result.body(), headers=call.headers)
    completion = result.json()
    message = chat_completion_to_message(completion, str(completion.get("model") or body["model"]))
    return json_response(message, headers=call.headers)


async def _anthropic_events(stream: MeteredStream) -> AsyncIterator[bytes]:
    """Canonical chunks -> Anthropic events, a block of whole events at a time."""
    translator = ChatChunksToAnthropic()
    async for block in stream:
        events = []
        for _event, payload in iter_event_payloads(block):
            events += translator.feed(orjson.loads(payload))
        if events:
            yield b"".join(sse_event(name, data) for name, data in events)
    yield b"".join(sse_event(name, data) for name, data in translator.finish())


async def count_tokens(request: web.Request) -> web.StreamResponse:
    """Anthropic's own count where the model is served by Anthropic; the gateway's tokenizer elsewhere."""
    principal = await authenticate(request)
    body, _raw = await read_json_object(request)
    validate_messages_request(body, count_tokens=True)
    require_scope(principal, "models:use")
    call = Call(
        request_id=request_id(request),
        surface=Surface.ANTHROPIC,
        operation=Operation.CHAT,
        principal=principal,
    )
    svc = services(request)
    model = route(svc.catalog, call, str(body["model"]))
    target = model.target()
    # Only providers that speak Anthropic's format offer a native count (duck-typed: the api layer
    # knows no provider classes).
    native_count = getattr(svc.providers.get(target.provider), "count_tokens", None)
    if native_count is not None:
        counted: dict[str, Any] = await native_count(body, target)
        return json_response({"input_tokens": int(counted.get("input_tokens") or 0)}, headers=call.headers)
    chat = messages_to_chat({**body, "max_tokens": 1})  # max_tokens is not part of what is counted
    total = svc.tokens.count_messages(chat["messages"], target.upstream_model)
    if chat.get("tools"):
        total += svc.tokens.count_text(orjson.dumps(chat["tools"]).decode(), target.upstream_model)
    return json_response({"input_tokens": total}, headers=call.headers)
