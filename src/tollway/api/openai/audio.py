"""POST /v1/audio/transcriptions and POST /v1/audio/translations (multipart uploads, OpenAI's shape).

Uploads are limited to 25 MB, as OpenAI's are (413 beyond). `response_format` json, text, srt, vtt or
verbose_json; `timestamp_granularities[]` word and/or segment (verbose_json only). Translation needs a
model with the `translation` capability; the local Whisper model is English-only and has none, so without
a configured one the answer is a 400 that says so.
"""

from __future__ import annotations

from aiohttp import web

from tollway.api.http import authenticate, services
from tollway.api.multipart import MB, Form, read_form
from tollway.api.openai.media import check_fields, is_number, result_response, run_call
from tollway.errors import InvalidRequest
from tollway.types import JSON, Operation

MAX_AUDIO_BYTES = 25 * MB
# OpenAI's list, plus aac and opus, which /v1/audio/speech itself produces
AUDIO_EXTENSIONS = ("aac", "flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "opus", "wav", "webm")
RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = frozenset({"word", "segment"})

FIELDS = {
    "model": (lambda v: isinstance(v, str) and bool(v), "a model id"),
    "response_format": (lambda v: v in RESPONSE_FORMATS, "one of " + ", ".join(RESPONSE_FORMATS)),
    "temperature": (lambda v: is_number(v) and 0 <= v <= 1, "a number between 0 and 1"),
    "timestamp_granularities": (
        lambda v: isinstance(v, list) and set(v) <= GRANULARITIES,
        "a list of 'word' and/or 'segment'",
    ),
}


async def transcriptions(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    form = await read_form(request, file_fields=("file",), file_limit=MAX_AUDIO_BYTES)
    body = audio_body(form)
    call, result = await run_call(request, principal, Operation.TRANSCRIPTION, body, files=form.files)
    return result_response(call, result)


async def translations(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    capable = services(request).catalog.with_capability(Operation.TRANSLATION)
    if not capable:
        raise InvalidRequest(
            "No configured model supports translation: the local model local:whisper-tiny-en transcribes "
            "English only. Use POST /v1/audio/transcriptions for English audio, or add a model with "
            "`capabilities: [translation]` to the config.",
            param="model",
        )
    form = await read_form(request, file_fields=("file",), file_limit=MAX_AUDIO_BYTES)
    body = audio_body(form, default_model=capable[0].id)
    call, result = await run_call(request, principal, Operation.TRANSLATION, body, files=form.files)
    return result_response(call, result)


def audio_body(form: Form, default_model: str | None = None) -> JSON:
    """The form's fields as a typed body, checked; the upload stays in `form.files`."""
    upload = form.files.get("file")
    if upload is None:
        raise InvalidRequest("Attach the audio file as the multipart field 'file'.", param="file")
    _check_extension(upload.filename)
    body: JSON = dict(form.fields)
    body.setdefault("model", default_model)
    if not body.get("model"):
        raise InvalidRequest("You must provide a model parameter.", param="model")
    if "temperature" in body:
        body["temperature"] = _number(body["temperature"], "temperature")
    check_fields(body, FIELDS)
    if body.get("timestamp_granularities") and body.get("response_format") != "verbose_json":
        raise InvalidRequest(
            "timestamp_granularities[] requires response_format 'verbose_json'.",
            param="timestamp_granularities",
        )
    return body


def _check_extension(filename: str) -> None:
    _, dot, extension = filename.rpartition(".")
    if dot and extension.lower() not in AUDIO_EXTENSIONS:
        raise InvalidRequest(
            f"Invalid file format '{extension}'. Supported formats: {', '.join(AUDIO_EXTENSIONS)}.",
            param="file",
        )


def _number(value: object, name: str) -> float:
    try:
        return float(str(value))
    except ValueError as exc:
        raise InvalidRequest(f"Invalid value for '{name}': expected a number.", param=name) from exc
