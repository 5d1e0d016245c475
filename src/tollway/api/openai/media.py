"""Shared by the non-chat OpenAI routes (audio, images, moderation, rerank): running a call through the
pipeline and answering with JSON or with the bytes themselves (audio, images, subtitles)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from tollway.api.http import bytes_response, request_id, services
from tollway.errors import InvalidRequest
from tollway.pipeline import Call
from tollway.pipeline.dispatch import Result
from tollway.types import JSON, BinaryResult, ModelRequest, Operation, Principal, Surface, UploadedFile


async def run_call(
    request: web.Request,
    principal: Principal,
    operation: Operation,
    body: JSON,
    *,
    raw: bytes | None = None,
    files: dict[str, UploadedFile] | None = None,
) -> tuple[Call, Result]:
    """Route, meter and dispatch one call (the caller authenticated first, before reading any upload)."""
    call = Call(
        request_id=request_id(request), surface=Surface.OPENAI, operation=operation, principal=principal
    )
    model_request = ModelRequest(body=body, raw=raw, files=files or {}, client_headers=request.headers)
    return call, await services(request).gateway.run(call, model_request)


def result_response(call: Call, result: Result) -> web.Response:
    """JSON results as JSON; binary ones as their bytes with their own media type."""
    if isinstance(result, BinaryResult):
        response = web.Response(body=result.content, headers=call.headers)
        response.headers["Content-Type"] = result.content_type
        return response
    return bytes_response(result.body(), headers=call.headers)


def default_model(request: web.Request, operation: Operation, preferred: str) -> str:
    """The model for a request that names none: `preferred` when served, else the first capable one."""
    catalog = services(request).catalog
    if catalog.get(preferred) is not None:
        return preferred
    capable = catalog.with_capability(operation)
    if capable:
        return capable[0].id
    raise InvalidRequest(
        f"You must provide a model parameter: no configured model supports {operation.value}.", param="model"
    )


Check = Callable[[Any], bool]


def check_fields(body: JSON, fields: dict[str, tuple[Check, str]]) -> None:
    """Type checks from a table of field -> (check, what it must be); absent fields pass."""
    for name, (check, expected) in fields.items():
        value = body.get(name)
        if value is not None and not check(value):
            raise InvalidRequest(f"Invalid value for '{name}': expected {expected}.", param=name)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())
