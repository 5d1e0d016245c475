"""OpenAI's answers for the local embeddings, rerank, moderation, transcription and speech models.

Pure functions from request bodies and engine results to the JSON (or text) the OpenAI API would give,
so the provider class only orchestrates: read the request, run the engine in the pool, shape the answer.
"""

from __future__ import annotations

import base64
import math
import os
from dataclasses import dataclass
from typing import Any

from tollway.errors import InvalidRequest
from tollway.providers.local.catalog import LocalModel
from tollway.providers.local.errors import LocalModelUnsupported
from tollway.providers.local.moderation import EVALUATED_CATEGORIES
from tollway.providers.local.speech import DEFAULT_VOICE, OPENAI_VOICE_ALIASES
from tollway.providers.local.transcription import Transcription
from tollway.types import JSON, BinaryResult, JsonResult, Usage

MAX_EMBEDDING_INPUTS = 2048  # OpenAI's own limit per request


# -- embeddings and rerank -----------------------------------------------------------------------
def embedding_inputs(body: JSON, model: LocalModel) -> list[str]:
    value = body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise LocalModelUnsupported(
            model.id,
            "'input' must be a string or an array of strings (token arrays are not supported)",
            param="input",
        )
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise InvalidRequest(f"'input' may hold at most {MAX_EMBEDDING_INPUTS} items.", param="input")
    dimensions = body.get("dimensions")
    if dimensions is not None and dimensions != model.dimensions:
        raise LocalModelUnsupported(
            model.id, f"'dimensions' must be {model.dimensions} (or left out)", param="dimensions"
        )
    return texts


def embedding_vector(vector: Any, as_base64: bool) -> list[float] | str:
    """float32 values, or their little-endian bytes in base64 (what OpenAI's SDKs ask for by default)."""
    if as_base64:
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    values: list[float] = vector.tolist()
    return values


def document_text(document: Any) -> str:
    """Rerank documents are strings or objects with `text` (Cohere and Jina both accept either)."""
    return document if isinstance(document, str) else str(document["text"])


def rerank_answer(body: JSON, model: str, documents: list[str], scores: list[float], tokens: int) -> JSON:
    """Cohere/Jina's shape: results sorted by score, `document` only when asked for."""
    ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
    top_n = body.get("top_n")
    if isinstance(top_n, int):
        ranked = ranked[:top_n]
    with_documents = body.get("return_documents") is True
    results = []
    for index in ranked:
        result: JSON = {"index": index, "relevance_score": round(scores[index], 6)}
        if with_documents:
            result["document"] = {"text": documents[index]}
        results.append(result)
    return {
        "id": "rerank-" + os.urandom(12).hex(),
        "object": "list",
        "model": model,
        "results": results,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "search_units": 1},
        "meta": {"billed_units": {"search_units": 1}},
    }


# -- moderation ----------------------------------------------------------------------------------
def moderation_inputs(value: Any, model: str) -> list[str]:
    """Strings, or OpenAI's multi-modal parts; this model reads text only."""
    items = value if isinstance(value, list) else [value]
    texts = []
    for item in items:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict) and item.get("type") == "text":
            texts.append(str(item.get("text") or ""))
        else:
            kind = item.get("type") if isinstance(item, dict) else type(item).__name__
            raise LocalModelUnsupported(model, f"it moderates text only, not '{kind}' input", param="input")
    return texts


def moderation_result(result: JSON) -> JSON:
    """OpenAI's result, limited to what the model scored, saying which categories those are."""
    return {
        **result,
        "category_applied_input_types": {name: ["text"] for name in EVALUATED_CATEGORIES},
        "evaluated_categories": list(EVALUATED_CATEGORIES),
    }


# -- transcription -------------------------------------------------------------------------------
_TEXT_FORMATS = frozenset({"text", "srt", "vtt"})
_LANGUAGE_NAMES = {"en": "english"}  # verbose_json names the language in words, as OpenAI does


@dataclass(frozen=True)
class TranscriptionOptions:
    response_format: str = "json"
    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    granularities: frozenset[str] = frozenset({"segment"})

    @classmethod
    def from_body(cls, body: JSON) -> TranscriptionOptions:
        granularities = body.get("timestamp_granularities") or ["segment"]
        return cls(
            response_format=str(body.get("response_format") or "json"),
            language=body.get("language") or None,
            prompt=body.get("prompt") or None,
            temperature=float(body.get("temperature") or 0.0),
            granularities=frozenset(granularities),
        )


def transcription_result(result: Transcription, options: TranscriptionOptions) -> JsonResult | BinaryResult:
    usage = Usage(audio_seconds=result.duration)
    fmt = options.response_format
    if fmt in _TEXT_FORMATS:
        text = _SUBTITLES[fmt](result) if fmt != "text" else result.text + "\n"
        return BinaryResult(text.encode(), "text/plain; charset=utf-8", usage)
    duration_usage = {"type": "duration", "seconds": math.ceil(result.duration)}
    if fmt == "verbose_json":
        return JsonResult(
            usage=usage, data={**verbose_transcription(result, options), "usage": duration_usage}
        )
    return JsonResult(usage=usage, data={"text": result.text, "usage": duration_usage})


def verbose_transcription(result: Transcription, options: TranscriptionOptions) -> JSON:
    body: JSON = {
        "task": "transcribe",
        "language": _LANGUAGE_NAMES.get(result.language, result.language),
        "duration": result.duration,
        "text": result.text,
    }
    if "segment" in options.granularities:
        body["segments"] = [_segment(s) for s in result.as_dict()["segments"]]
    if "word" in options.granularities:
        body["words"] = [{"word": w.word.strip(), "start": w.start, "end": w.end} for w in result.words or []]
    return body


def _segment(segment: JSON) -> JSON:
    fields = ("id", "start", "end", "text", "tokens", "temperature", "avg_logprob")
    more = ("compression_ratio", "no_speech_prob")
    return {"seek": 0, **{name: segment[name] for name in (*fields, *more)}}


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _srt(result: Transcription) -> str:
    cues = [
        f"{i}\n{_timestamp(s.start, ',')} --> {_timestamp(s.end, ',')}\n{s.text.strip()}\n"
        for i, s in enumerate(result.segments, start=1)
    ]
    return "\n".join(cues)


def _vtt(result: Transcription) -> str:
    cues = [
        f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{s.text.strip()}\n"
        for s in result.segments
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


_SUBTITLES = {"srt": _srt, "vtt": _vtt}


# -- speech --------------------------------------------------------------------------------------
def voice_name(voice: Any) -> str:
    """OpenAI accepts a voice name or `{"id": ...}` (custom voices)."""
    if isinstance(voice, dict):
        voice = voice.get("id")
    return str(voice or "alloy")


def voice_aliases(voice: str) -> list[str]:
    """OpenAI's voice names are accepted and spoken with the default voice."""
    return sorted(OPENAI_VOICE_ALIASES) if voice == DEFAULT_VOICE else []
