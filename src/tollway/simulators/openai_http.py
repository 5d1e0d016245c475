"""The OpenAI simulator's wire helpers: reading a request body as OpenAI does, JSON and error responses,
SSE frames, model objects, and telling a model's kind from its id."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tollway.simulators import openai_errors as err

Body = dict[str, Any]

_MODEL_CREATED = 1_700_000_000


def model_kind(model: str) -> str:
    """``chat``, ``completion``, ``embedding``, ``image``, ``audio`` or ``speech``, judged from the id as
    OpenAI names them."""
    if "embedding" in model:
        return "embedding"
    if model.startswith(("dall-e", "gpt-image")):
        return "image"
    if model.startswith("whisper") or "transcribe" in model:
        return "audio"
    if model.startswith("tts") or "-tts" in model:
        return "speech"
    if "instruct" in model or model in ("davinci-002", "babbage-002"):
        return "completion"
    return "chat"


def parse_body(raw: bytes, content_type: str) -> tuple[Body, err.SimError | None]:
    if not raw:
        return {}, None  # OpenAI then complains about the missing fields, not about the JSON
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}, err.bad_json()
    if not isinstance(body, dict):
        return {}, err.bad_json()
    if content_type not in ("application/json", ""):
        # OpenAI reads bodies only as JSON; a form or text body is the same client mistake as bad JSON.
        return body, err.bad_json()
    return body, None


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def sse_frame(event: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(event) + b"\n\n"


def model_object(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": _MODEL_CREATED, "owned_by": "system"}


def json_response(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


def error_response(exc: err.SimError) -> web.Response:
    return web.Response(
        body=exc.body(), status=exc.status, content_type="application/json", headers=exc.headers
    )
