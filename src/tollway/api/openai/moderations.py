"""POST /v1/moderations in OpenAI's shape.

With no `model`, the request goes to `local:profanity-check` (or the first configured moderation model).
Local results carry only the categories the model really scores, plus `evaluated_categories` naming them:
a category that is absent was not evaluated, which is not the same as being scored 0.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tollway.api.http import authenticate, read_json_object
from tollway.api.openai.media import default_model, result_response, run_call
from tollway.errors import InvalidRequest
from tollway.types import JSON, Operation

DEFAULT_MODEL = "local:profanity-check"
MAX_INPUTS = 1000


async def moderations(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body, raw = await read_json_object(request)
    check_moderation(body)
    sent: bytes | None = raw
    if not body.get("model"):  # the body changes, so the caller's bytes no longer describe it
        body, sent = {**body, "model": default_model(request, Operation.MODERATION, DEFAULT_MODEL)}, None
    call, result = await run_call(request, principal, Operation.MODERATION, body, raw=sent)
    return result_response(call, result)


def check_moderation(body: JSON) -> None:
    value = body.get("input")
    items = value if isinstance(value, list) else [value]
    if value is None or value == [] or not all(_is_input(item) for item in items):
        raise InvalidRequest(
            "'input' must be a string, an array of strings, or an array of "
            '{"type": "text", "text": ...} / {"type": "image_url", ...} objects.',
            param="input",
        )
    if len(items) > MAX_INPUTS:
        raise InvalidRequest(f"'input' may hold at most {MAX_INPUTS} items.", param="input")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidRequest("Invalid value for 'model': expected a string.", param="model")


def _is_input(item: Any) -> bool:
    return isinstance(item, str) or (isinstance(item, dict) and item.get("type") in ("text", "image_url"))
