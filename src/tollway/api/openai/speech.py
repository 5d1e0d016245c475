"""POST /v1/audio/speech (OpenAI's shape: the answer is the audio itself) and GET /v1/audio/voices.

Speech takes `{"model", "input" (<= 4,096 characters), "voice", "response_format", "speed" (0.25-4.0)}`
and answers with audio bytes of the format's media type; usage is counted in characters.
GET /v1/audio/voices is a Tollway extension listing the voices the local speech models have offline.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tollway.api.http import authenticate, json_response, read_json_object, services
from tollway.api.openai.media import check_fields, is_number, is_text, result_response, run_call
from tollway.errors import InvalidRequest
from tollway.pipeline.auth import require_scope
from tollway.providers.local.provider import LocalProvider
from tollway.types import JSON, Operation

MAX_INPUT_CHARS = 4096
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")

FIELDS = {
    "model": (lambda v: isinstance(v, str) and bool(v), "a model id"),
    "input": (
        lambda v: is_text(v) and len(v) <= MAX_INPUT_CHARS,
        f"text of 1 to {MAX_INPUT_CHARS} characters",
    ),
    "voice": (lambda v: is_text(v) or (isinstance(v, dict) and is_text(v.get("id"))), "a voice name"),
    "response_format": (lambda v: v in FORMATS, "one of " + ", ".join(FORMATS)),
    "speed": (lambda v: is_number(v) and 0.25 <= v <= 4.0, "a number from 0.25 to 4.0"),
}


async def speech(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body, raw = await read_json_object(request)
    check_speech(body)
    call, result = await run_call(request, principal, Operation.SPEECH, body, raw=raw)
    return result_response(call, result)


def check_speech(body: JSON) -> None:
    for name in ("model", "input", "voice"):
        if body.get(name) is None:
            raise InvalidRequest(f"You must provide the '{name}' parameter.", param=name)
    check_fields(body, FIELDS)


async def voices(request: web.Request) -> web.StreamResponse:
    require_scope(await authenticate(request), "models:use")
    found: list[dict[str, Any]] = []
    provider = services(request).providers.get("local")
    if isinstance(provider, LocalProvider):
        for model in services(request).catalog.with_capability(Operation.SPEECH):
            if model.provider == "local":
                found += await provider.voices(model.id)
    return json_response({"object": "list", "data": found})
