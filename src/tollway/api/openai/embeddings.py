"""POST /v1/embeddings."""

from __future__ import annotations

from aiohttp import web

from tollway.api.http import authenticate, bytes_response, read_json_object, request_id, services
from tollway.api.openai.validate import check_embedding
from tollway.pipeline import Call
from tollway.types import ModelRequest, Operation, Surface


async def embeddings(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body, raw = await read_json_object(request)
    check_embedding(body)
    call = Call(request_id(request), Surface.OPENAI, Operation.EMBEDDING, principal)
    result = await services(request).gateway.run_json(
        call, ModelRequest(body=body, raw=raw, client_headers=request.headers)
    )
    return bytes_response(result.body(), headers=call.headers)
