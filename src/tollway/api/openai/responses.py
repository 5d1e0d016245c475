"""POST /v1/responses, GET /v1/responses/{id}, DELETE /v1/responses/{id}: the Responses API over chat.

A create request is translated to a chat completions call (`formats.responses`), run through the same
pipeline as `/v1/chat/completions`, and its answer (or stream) translated back. With `store` (on by default,
as at OpenAI) the response object and the conversation so far are kept, for retrieval and for
`previous_response_id`; a stream is stored before its final event, so a client can continue at once.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from tollway.api.http import authenticate, json_response, read_json_object, request_id, services
from tollway.api.openai.validate import CHAT_FIELDS, check_fields
from tollway.api.streaming import write_sse
from tollway.errors import InvalidRequest, NotFound, TollwayError
from tollway.formats.responses import chat_to_response, response_to_history, responses_to_chat
from tollway.formats.responses_stream import ChatChunksToResponseEvents, sse_event
from tollway.pipeline import Call, MeteredStream
from tollway.pipeline.auth import require_scope
from tollway.providers.sse import iter_event_payloads
from tollway.store.responses import delete_response, history_messages, load_response, save_response
from tollway.types import JSON, ModelRequest, Operation, Principal, Surface

if TYPE_CHECKING:
    from tollway.services import Services

# The fields the gateway itself relies on, checked before translation (the rest the upstream validates).
RESPONSE_FIELDS = {
    **{
        name: CHAT_FIELDS[name]
        for name in ("model", "stream", "stream_options", "temperature", "top_p", "user")
    },
    "max_output_tokens": CHAT_FIELDS["max_completion_tokens"],
}


def new_response_id() -> str:
    return "resp_" + secrets.token_hex(24)


async def create_response(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body, _raw = await read_json_object(request)
    check_fields(body, RESPONSE_FIELDS)
    svc = services(request)
    history = await _previous_history(svc, principal, body.get("previous_response_id"))
    chat = responses_to_chat(body, history)
    call = Call(
        request_id=request_id(request), surface=Surface.OPENAI, operation=Operation.CHAT, principal=principal
    )
    model_request = ModelRequest(body=chat, client_headers=request.headers)
    response_id, created_at = new_response_id(), int(time.time())
    if model_request.stream:
        stream = await svc.gateway.run_stream(call, model_request)
        translator = ChatChunksToResponseEvents(body, response_id, created_at)

        def failed(exc: TollwayError) -> bytes:
            return b"".join(sse_event(event) for event in translator.fail(exc))

        events = _stream_events(svc, principal, chat, stream, translator)
        return await write_sse(request, call, stream, events, failed)
    result = await svc.gateway.run_json(call, model_request)
    response = chat_to_response(result.json(), body, response_id, created_at, completed_at=int(time.time()))
    await _store(svc, principal, body, chat, response)
    return json_response(response, headers=call.headers)


async def get_response(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    require_scope(principal, "models:use")
    response_id = request.match_info["response_id"]
    row = await load_response(services(request).sessions, principal.project_id, response_id)
    if row is None:
        raise _not_found(response_id)
    return json_response(row.response)


async def remove_response(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    require_scope(principal, "models:use")
    response_id = request.match_info["response_id"]
    if not await delete_response(services(request).sessions, principal.project_id, response_id):
        raise _not_found(response_id)
    return json_response({"id": response_id, "object": "response", "deleted": True})


async def _previous_history(svc: Services, principal: Principal, previous_id: object) -> list[JSON] | None:
    if previous_id is None:
        return None
    if not isinstance(previous_id, str) or not previous_id:
        raise InvalidRequest(
            "Invalid value for 'previous_response_id': expected a response id.", param="previous_response_id"
        )
    row = await load_response(svc.sessions, principal.project_id, previous_id)
    if row is None:
        raise NotFound(f"Previous response with id '{previous_id}' not found.", param="previous_response_id")
    return history_messages(row)


async def _stream_events(
    svc: Services,
    principal: Principal,
    chat: JSON,
    stream: MeteredStream,
    translator: ChatChunksToResponseEvents,
) -> AsyncIterator[bytes]:
    yield _frame(translator.start())
    async for block in stream:
        events: list[JSON] = []
        for _event, payload in iter_event_payloads(block):
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue  # a comment or keep-alive, not a chunk
            events += translator.feed(chunk)
        if events:
            yield _frame(events)
    final = translator.finish(completed_at=int(time.time()))
    if translator.response is not None:
        await _store(svc, principal, translator.request, chat, translator.response)
    yield _frame(final)


async def _store(svc: Services, principal: Principal, body: JSON, chat: JSON, response: JSON) -> None:
    if body.get("store") is False:
        return
    history = response_to_history(chat["messages"], response)
    await save_response(svc.sessions, principal.project_id, response, history)


def _frame(events: list[JSON]) -> bytes:
    return b"".join(sse_event(event) for event in events)


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", param="response_id")
