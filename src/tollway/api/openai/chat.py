"""POST /v1/chat/completions and POST /v1/completions."""

from __future__ import annotations

import orjson
from aiohttp import web

from tollway.api.errors import openai_error
from tollway.api.http import authenticate, bytes_response, read_json_object, request_id, services
from tollway.api.openai.validate import check_chat, check_completion
from tollway.api.streaming import write_sse
from tollway.errors import TollwayError
from tollway.pipeline import Call
from tollway.providers.sse import data_event
from tollway.types import ModelRequest, Operation, Surface

DONE = b"data: [DONE]\n\n"


def openai_error_event(exc: TollwayError) -> bytes:
    return data_event(orjson.dumps(openai_error(exc)))


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, Operation.CHAT)


async def completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, Operation.COMPLETION)


async def _complete(request: web.Request, operation: Operation) -> web.StreamResponse:
    principal = await authenticate(request)
    body, raw = await read_json_object(request)
    _CHECKS[operation](body)
    call = Call(request_id(request), Surface.OPENAI, operation, principal)
    model_request = ModelRequest(body=body, raw=raw, client_headers=request.headers)
    gateway = services(request).gateway
    if model_request.stream:
        stream = await gateway.run_stream(call, model_request)
        return await write_sse(request, call, stream, aiter(stream), openai_error_event, DONE)
    result = await gateway.run_json(call, model_request)
    return bytes_response(result.body(), headers=call.headers)


_CHECKS = {Operation.CHAT: check_chat, Operation.COMPLETION: check_completion}
