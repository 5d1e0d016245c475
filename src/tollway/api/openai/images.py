"""POST /v1/images/generations (routed to a configured text-to-image model) and POST /v1/images/upscale.

Upscale is a Tollway extension: multipart `image` + `factor` (2 or 4), or JSON `{"image": base64 or data
URL, "factor"}`; `model` defaults to `local:lanczos`. The answer is the image itself, in its input format
(PNG, JPEG or WebP), or `{"created", "data": [{"b64_json"}], "output_format"}` with
`response_format: "b64_json"`.
"""

from __future__ import annotations

import base64
import binascii
import time

from aiohttp import web

from tollway.api.http import authenticate, json_response, read_json_object, services
from tollway.api.multipart import MB, read_form
from tollway.api.openai.media import default_model, result_response, run_call
from tollway.catalog import Catalog
from tollway.errors import InvalidRequest, ModelNotFound, PayloadTooLarge
from tollway.types import JSON, BinaryResult, Operation, UploadedFile

MAX_IMAGE_BYTES = 20 * MB
DEFAULT_UPSCALER = "local:lanczos"
FACTORS = (2, 4)


async def generations(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body, _raw = await read_json_object(request)
    body["model"] = image_model(services(request).catalog, body.get("model"))
    call, result = await run_call(request, principal, Operation.IMAGE_GENERATION, body)
    return result_response(call, result)


def image_model(catalog: Catalog, requested: object) -> str:
    """The text-to-image model to use, or a 400 naming the ones that exist (or how to add one)."""
    capable = [model.id for model in catalog.with_capability(Operation.IMAGE_GENERATION)]
    if not capable:
        raise InvalidRequest(
            "No configured model supports image_generation: no text-to-image model runs offline (the "
            "local provider has none). Add one to the config under `models:` with "
            "`capabilities: [image_generation]` on a provider that serves it.",
            param="model",
        )
    if not requested:
        return capable[0]
    try:
        found = catalog.lookup(str(requested))
    except ModelNotFound:
        found = None
    if found is None or found.id not in capable:
        raise InvalidRequest(
            f"The model '{requested}' does not support image_generation. "
            f"Models that do: {', '.join(capable)}.",
            param="model",
        )
    return found.id


async def upscale(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body, files = await _upscale_input(request)
    body["factor"] = _factor(body.get("factor", 2))
    if not body.get("model"):
        body["model"] = default_model(request, Operation.UPSCALE, DEFAULT_UPSCALER)
    call, result = await run_call(request, principal, Operation.UPSCALE, body, files=files)
    if body.get("response_format") == "b64_json" and isinstance(result, BinaryResult):
        return json_response(_b64_answer(result), headers=call.headers)
    return result_response(call, result)


async def _upscale_input(request: web.Request) -> tuple[JSON, dict[str, UploadedFile]]:
    """Multipart with an `image` file, or JSON with the image in base64."""
    if request.content_type == "multipart/form-data":
        form = await read_form(request, file_fields=("image",), file_limit=MAX_IMAGE_BYTES)
        if "image" not in form.files:
            raise InvalidRequest("Attach the image as the multipart field 'image'.", param="image")
        return dict(form.fields), form.files
    body, _raw = await read_json_object(request)
    encoded = body.pop("image", None)
    if not isinstance(encoded, str) or not encoded:
        raise InvalidRequest("'image' must be a base64 string or a data URL.", param="image")
    return body, {"image": UploadedFile("image", "application/octet-stream", _decode_base64(encoded))}


def _decode_base64(encoded: str) -> bytes:
    payload = encoded.partition(",")[2] if encoded.startswith("data:") else encoded
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("'image' is not valid base64.", param="image") from exc
    if len(data) > MAX_IMAGE_BYTES:
        raise PayloadTooLarge(f"'image' is larger than {MAX_IMAGE_BYTES // MB} MB.", param="image")
    return data


def _factor(value: object) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) not in FACTORS:
        raise InvalidRequest(f"'factor' must be one of {', '.join(map(str, FACTORS))}.", param="factor")
    return int(text)


def _b64_answer(result: BinaryResult) -> JSON:
    return {
        "created": int(time.time()),
        "data": [{"b64_json": base64.b64encode(result.content).decode("ascii")}],
        "output_format": result.content_type.rpartition("/")[2],
    }
