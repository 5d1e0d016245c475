"""The simulator's audio routes: `POST /v1/audio/transcriptions` and `/translations` (multipart) and
`POST /v1/audio/speech` (JSON in, audio bytes out), validated like OpenAI's and answered deterministically."""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from tollway.simulators import openai_errors as err

TRANSCRIBE_FIELDS = frozenset(
    {
        "model",
        "language",
        "prompt",
        "response_format",
        "temperature",
        "timestamp_granularities[]",
        "include[]",
        "stream",
        "chunking_strategy",
    }
)
TRANSCRIBE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
SPEECH_FIELDS = frozenset(
    {"model", "input", "voice", "response_format", "speed", "instructions", "stream_format"}
)
SPEECH_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
BYTES_PER_SECOND = 16_000  # the simulator's notion of an upload's duration: 16 kB a second


def validate_transcription(fields: dict[str, Any], files: dict[str, web.FileField]) -> str:
    unknown = sorted(set(fields) - TRANSCRIBE_FIELDS)
    if unknown:
        raise err.unrecognized(unknown)
    if "file" not in files:
        raise err.missing("file")
    if not fields.get("model"):
        raise err.missing("model")
    if fields.get("response_format", "json") not in TRANSCRIBE_FORMATS:
        raise err.invalid_value("response_format", fields.get("response_format"), list(TRANSCRIBE_FORMATS))
    return str(fields["model"])


def transcription_response(fields: dict[str, Any], upload: web.FileField, task: str) -> web.Response:
    data = upload.file.read()
    seconds = round(len(data) / BYTES_PER_SECOND, 3)
    text = f"{task} of {upload.filename} ({len(data)} bytes)"
    fmt = fields.get("response_format", "json")
    if fmt == "text":
        return web.Response(text=text)
    usage = {"type": "duration", "seconds": seconds}
    body: dict[str, Any] = {"text": text, "usage": usage}
    if fmt == "verbose_json":
        body = {
            "task": task,
            "language": "english",
            "duration": seconds,
            "text": text,
            "segments": [],
            "usage": usage,
        }
    return web.json_response(body)


def validate_speech(body: dict[str, Any]) -> str:
    unknown = sorted(set(body) - SPEECH_FIELDS)
    if unknown:
        raise err.unrecognized(unknown)
    for name in ("model", "input", "voice"):
        if not body.get(name):
            raise err.missing(name)
    if not isinstance(body["input"], str) or len(body["input"]) > 4096:
        raise err.invalid("'input' must be a string of at most 4096 characters.", "input")
    if body.get("response_format", "mp3") not in SPEECH_TYPES:
        raise err.invalid_value("response_format", body.get("response_format"), list(SPEECH_TYPES))
    return str(body["model"])


def speech_response(body: dict[str, Any]) -> web.Response:
    fmt = body.get("response_format", "mp3")
    audio = fmt.encode() + hashlib.sha256(str(body["input"]).encode()).digest()  # stable, tagged by format
    return web.Response(body=audio, content_type=SPEECH_TYPES[fmt])
