"""The `local` provider: OpenAI-shaped requests in, offline engines run, OpenAI-shaped answers out.

Engines (``chat.py``, ``embeddings.py``, ...) know nothing of HTTP or OpenAI's wire shapes; this module
is the adapter. It reads the canonical request body, calls the engine through a ``ModelPool`` (so the
blocking work happens in worker threads, within a memory bound and one call per model at a time), and
builds the answer the OpenAI API would give, with the usage metering needs: tokens for chat and
embeddings, characters for speech, audio seconds for transcription, images for upscale.

Only what the models really do is claimed: moderation reports the categories it evaluates, chat refuses
tools and images, embeddings refuse other dimensions, instead of quietly ignoring what was asked.
"""

from __future__ import annotations

import base64
import contextlib
import math
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from tollway.catalog import CatalogModel
from tollway.errors import InvalidRequest, ModelNotFound, UpstreamUnavailable
from tollway.providers.base import Provider
from tollway.providers.local.catalog import LOCAL_MODELS, MODELS_BY_ID, LocalModel
from tollway.providers.local.chat import Generation
from tollway.providers.local.errors import BACKEND, LocalModelUnsupported
from tollway.providers.local.moderation import EVALUATED_CATEGORIES
from tollway.providers.local.pool import ModelPool
from tollway.providers.local.transcription import Transcription
from tollway.providers.sse import data_event
from tollway.types import JSON, BinaryResult, ChatStream, JsonResult, ModelRequest, Pricing, Target, Usage

# Calls each engine may run at once. MiniLM and Lanczos are thread-safe and quick; llama.cpp, hibari
# and whisper each serialise internally anyway, so a second slot would only hold a worker thread.
CONCURRENCY: Mapping[str, int] = {"local:all-minilm-l6-v2": 2, "local:lanczos": 2}
MAX_MEMORY_MB = 1536  # all six models fit (docs/local-models.md); lower it to trade latency for RAM
MAX_WORKERS = 4
MAX_EMBEDDING_INPUTS = 2048  # OpenAI's own limit per request

# Chat request fields the packaged model cannot honour: (field, test that it was really asked, why).
_CHAT_REFUSALS: tuple[tuple[str, Any, str], ...] = (
    ("tools", bool, "it cannot call tools"),
    ("functions", bool, "it cannot call functions"),
    ("n", lambda v: isinstance(v, int) and v > 1, "it returns one choice per request (n=1)"),
    ("logprobs", lambda v: v is True or (isinstance(v, int) and not isinstance(v, bool)), "no logprobs"),
    ("audio", bool, "it has no audio output"),
    (
        "response_format",
        lambda v: isinstance(v, dict) and v.get("type") not in (None, "text"),
        "it has no JSON mode",
    ),
)
_TEXT_PART_TYPES = frozenset({"text", "input_text"})


class LocalProvider(Provider):
    """Serves the installed local models; the pool is created in ``start`` and closed in ``aclose``."""

    name = "local"
    type = "local"

    def __init__(self, *, max_memory_mb: int = MAX_MEMORY_MB, max_workers: int = MAX_WORKERS) -> None:
        self._max_memory_mb = max_memory_mb
        self._max_workers = max_workers
        self._pool: ModelPool | None = None

    async def start(self) -> None:
        self._pool = ModelPool(
            max_memory_mb=self._max_memory_mb, concurrency=CONCURRENCY, max_workers=self._max_workers
        )

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    @property
    def pool(self) -> ModelPool:
        if self._pool is None:
            raise UpstreamUnavailable("The local provider is not started.", backend=BACKEND)
        return self._pool

    # -- chat and completions ---------------------------------------------------------------
    async def chat(self, request: ModelRequest, target: Target) -> JsonResult:
        messages, sampling = chat_arguments(request.body)
        generation = await self.pool.run(_local_id(target), "chat", messages, **sampling)
        return _generation_result(generation, chat_completion(generation, target.model_id))

    async def chat_stream(self, request: ModelRequest, target: Target) -> ChatStream:
        messages, sampling = chat_arguments(request.body)
        pieces = self.pool.stream(_local_id(target), "stream_chat", messages, **sampling)
        return await LocalStream.open(pieces, ChunkWriter("chat", target.model_id), _include_usage(request))

    async def completion(self, request: ModelRequest, target: Target) -> JsonResult:
        prompt, sampling = completion_arguments(request.body)
        generation = await self.pool.run(_local_id(target), "complete", prompt, **sampling)
        echo = prompt if request.body.get("echo") is True else ""
        return _generation_result(generation, text_completion(generation, target.model_id, echo))

    async def completion_stream(self, request: ModelRequest, target: Target) -> ChatStream:
        prompt, sampling = completion_arguments(request.body)
        pieces = self.pool.stream(_local_id(target), "stream_complete", prompt, **sampling)
        writer = ChunkWriter("completion", target.model_id)
        return await LocalStream.open(pieces, writer, _include_usage(request))

    # -- embeddings and rerank --------------------------------------------------------------
    async def embeddings(self, request: ModelRequest, target: Target) -> JsonResult:
        model = _local_model(target)
        texts = embedding_inputs(request.body, model)
        vectors = await self.pool.run(model.id, "embed", texts)
        tokens = sum(await self.pool.run(model.id, "count_tokens", texts))
        as_base64 = request.body.get("encoding_format") == "base64"
        data = [
            {"object": "embedding", "index": i, "embedding": _vector(v, as_base64)} for i, v in enumerate(vectors)
        ]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        body = {"object": "list", "data": data, "model": target.model_id, "usage": usage}
        return JsonResult(usage=Usage(input_tokens=tokens), data=body)

    async def rerank(self, request: ModelRequest, target: Target) -> JsonResult:
        model_id = _local_id(target)
        query = str(request.body["query"])
        documents = [document_text(d) for d in request.body["documents"]]
        scores = await self.pool.run(model_id, "rerank", query, documents)
        tokens = sum(await self.pool.run(model_id, "count_tokens", [query, *documents]))
        body = rerank_answer(request.body, target.model_id, documents, scores, tokens)
        return JsonResult(usage=Usage(input_tokens=tokens, search_units=1), data=body)

    # -- moderation -------------------------------------------------------------------------
    async def moderation(self, request: ModelRequest, target: Target) -> JsonResult:
        texts = moderation_inputs(request.body.get("input"), target.model_id)
        results = await self.pool.run(_local_id(target), "classify", texts)
        body = {
            "id": "modr-" + os.urandom(12).hex(),
            "model": target.model_id,
            "results": [_moderation_result(r) for r in results],
        }
        return JsonResult(usage=Usage(characters=sum(len(t) for t in texts)), data=body)

    # -- audio ------------------------------------------------------------------------------
    async def transcription(self, request: ModelRequest, target: Target) -> JsonResult | BinaryResult:
        upload = request.files.get("file")
        if upload is None:
            raise InvalidRequest("Attach the audio as the multipart field 'file'.", param="file")
        options = TranscriptionOptions.from_body(request.body)
        result: Transcription = await self.pool.run(
            _local_id(target),
            "transcribe",
            upload.data,
            upload.filename,
            options.language,
            "word" in options.granularities,
            options.prompt,
            options.temperature,
        )
        return transcription_result(result, options)

    async def speech(self, request: ModelRequest, target: Target) -> BinaryResult:
        body = request.body
        text = str(body.get("input") or "")
        voice = _voice_name(body.get("voice"))
        speed = float(body.get("speed") or 1.0)
        fmt = str(body.get("response_format") or "mp3")
        audio, content_type = await self.pool.run(_local_id(target), "synthesize", text, voice, speed, fmt)
        return BinaryResult(audio, content_type, Usage(characters=len(text)))

    async def voices(self, model_id: str = "local:hibari") -> list[dict[str, Any]]:
        """The voices a local speech model can use offline (GET /v1/audio/voices)."""
        voices: list[dict[str, Any]] = await self.pool.run(model_id, "voices")
        return [{**voice, "model": model_id} for voice in voices]

    # -- images -----------------------------------------------------------------------------
    async def upscale(self, request: ModelRequest, target: Target) -> BinaryResult:
        upload = request.files.get("image")
        if upload is None:
            raise InvalidRequest("Send the image as the multipart field 'image'.", param="image")
        factor = request.body.get("factor", 2)
        image, content_type = await self.pool.run(_local_id(target), "upscale", upload.data, factor)
        return BinaryResult(image, content_type, Usage(images=1))


# -- the catalog ---------------------------------------------------------------------------------
def local_catalog_models() -> list[CatalogModel]:
    """Catalog entries for the local models whose packages are installed (checked without importing)."""
    return [_catalog_model(model) for model in LOCAL_MODELS if model.installed()]


def _catalog_model(model: LocalModel) -> CatalogModel:
    return CatalogModel(
        id=model.id,
        provider="local",
        upstream_model=model.id.partition(":")[2],
        capabilities=frozenset(model.capabilities),
        context_window=model.context_tokens,
        pricing=Pricing(),  # free unless the operator configures the id with prices
        description=f"{model.description} {model.model_card}",
        listed=True,
    )


def _local_model(target: Target) -> LocalModel:
    model = MODELS_BY_ID.get(target.model_id)
    if model is None:
        known = ", ".join(m.id for m in LOCAL_MODELS)
        raise ModelNotFound(
            f"There is no local model '{target.model_id}'. Local models: {known}. "
            "List the installed ones with GET /v1/models.",
            param="model",
        )
    return model


def _local_id(target: Target) -> str:
    return _local_model(target).id


# -- chat ----------------------------------------------------------------------------------------
def chat_arguments(body: JSON) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(messages, sampling) for the engine, refusing what the packaged model cannot do."""
    for field, asked, why in _CHAT_REFUSALS:
        if asked(body.get(field)):
            raise _unsupported(f"'{field}' is not supported: {why}.", field)
    messages = body["messages"]
    for index, message in enumerate(messages):
        _check_text_only(message.get("content"), f"messages[{index}].content")
    return messages, sampling_arguments(body)


def completion_arguments(body: JSON) -> tuple[str, dict[str, Any]]:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise _unsupported("'prompt' must be one string (no batches, no token arrays).", "prompt")
    for field in ("suffix", "best_of"):
        if body.get(field) not in (None, 1):
            raise _unsupported(f"'{field}' is not supported.", field)
    if isinstance(body.get("n"), int) and body["n"] > 1:
        raise _unsupported("'n' must be 1.", "n")
    return prompt, sampling_arguments(body)


def sampling_arguments(body: JSON) -> dict[str, Any]:
    """The OpenAI sampling fields the engine takes; absent ones keep the engine's defaults."""
    sampling: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens is not None:
        sampling["max_tokens"] = max_tokens
    for field in ("temperature", "top_p", "stop", "seed"):
        if body.get(field) is not None:
            sampling[field] = body[field]
    return sampling


def _check_text_only(content: Any, param: str) -> None:
    if not isinstance(content, list):
        return
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in _TEXT_PART_TYPES:
            raise _unsupported(f"only text content is supported; got a '{kind}' part (no images).", param)


def _unsupported(reason: str, param: str) -> LocalModelUnsupported:
    return LocalModelUnsupported("local:smollm2-135m-instruct", reason, param=param)


def chat_completion(generation: Generation, model: str) -> JSON:
    message = {"role": "assistant", "content": generation.text, "refusal": None}
    return {
        "id": "chatcmpl-" + os.urandom(12).hex(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": generation.finish_reason}
        ],
        "usage": _token_usage(generation),
    }


def text_completion(generation: Generation, model: str, echo: str = "") -> JSON:
    choice = {
        "text": echo + generation.text,
        "index": 0,
        "logprobs": None,
        "finish_reason": generation.finish_reason,
    }
    return {
        "id": "cmpl-" + os.urandom(12).hex(),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": _token_usage(generation),
    }


def _token_usage(generation: Generation) -> JSON:
    return {
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "total_tokens": generation.prompt_tokens + generation.completion_tokens,
    }


def _generation_result(generation: Generation, body: JSON) -> JsonResult:
    usage = Usage(input_tokens=generation.prompt_tokens, output_tokens=generation.completion_tokens)
    return JsonResult(usage=usage, data=body)


def _include_usage(request: ModelRequest) -> bool:
    options = request.body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


@dataclass
class ChunkWriter:
    """OpenAI stream chunks for one answer: chat (`delta`) or legacy completion (`text`)."""

    kind: str  # "chat" or "completion"
    model: str

    def __post_init__(self) -> None:
        prefix = "chatcmpl-" if self.kind == "chat" else "cmpl-"
        self.id = prefix + os.urandom(12).hex()
        self.created = int(time.time())

    def first(self) -> bytes:
        return self._event(self._choice({"role": "assistant", "content": ""}, None)) if self.is_chat else b""

    def piece(self, text: str) -> bytes:
        return self._event(self._choice({"content": text} if self.is_chat else text, None))

    def last(self, generation: Generation) -> bytes:
        return self._event(self._choice({} if self.is_chat else "", generation.finish_reason))

    def usage(self, generation: Generation) -> bytes:
        return self._event([], usage=_token_usage(generation))

    @property
    def is_chat(self) -> bool:
        return self.kind == "chat"

    def _choice(self, content: Any, finish_reason: str | None) -> list[JSON]:
        key = "delta" if self.is_chat else "text"
        return [{"index": 0, key: content, "logprobs": None, "finish_reason": finish_reason}]

    def _event(self, choices: list[JSON], **extra: Any) -> bytes:
        obj = "chat.completion.chunk" if self.is_chat else "text_completion"
        chunk = {"id": self.id, "object": obj, "created": self.created, "model": self.model}
        return data_event(orjson.dumps({**chunk, "choices": choices, **extra}))


class LocalStream:
    """A ChatStream over the pool's generation: one SSE event per generated piece, token by token."""

    format = "openai"

    def __init__(
        self, pieces: AsyncGenerator[Any, None], first: Any, writer: ChunkWriter, include_usage: bool
    ) -> None:
        self.usage: Usage | None = None
        self._pieces = pieces
        self._first = first
        self._writer = writer
        self._include_usage = include_usage

    @classmethod
    async def open(
        cls, pieces: AsyncGenerator[Any, None], writer: ChunkWriter, include_usage: bool
    ) -> LocalStream:
        """Wait for the first piece, so a refused prompt is a plain 400 rather than an in-stream error."""
        try:
            first = await anext(pieces)
        except BaseException:
            await pieces.aclose()
            raise
        return cls(pieces, first, writer, include_usage)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._blocks()

    async def aclose(self) -> None:
        await self._pieces.aclose()  # stops the generator in its thread and frees the model

    async def _blocks(self) -> AsyncIterator[bytes]:
        yield self._writer.first()
        async with contextlib.aclosing(self._pieces) as rest:
            item = self._first
            while not isinstance(item, Generation):
                yield self._writer.piece(str(item))
                item = await anext(rest)
        self.usage = Usage(input_tokens=item.prompt_tokens, output_tokens=item.completion_tokens)
        yield self._writer.last(item)
        if self._include_usage:
            yield self._writer.usage(item)


# -- embeddings and rerank -----------------------------------------------------------------------
def embedding_inputs(body: JSON, model: LocalModel) -> list[str]:
    value = body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise LocalModelUnsupported(
            model.id, "'input' must be a string or an array of strings (token arrays are not supported)"
        )
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise InvalidRequest(f"'input' may hold at most {MAX_EMBEDDING_INPUTS} items.", param="input")
    dimensions = body.get("dimensions")
    if dimensions is not None and dimensions != model.dimensions:
        raise LocalModelUnsupported(
            model.id, f"'dimensions' must be {model.dimensions} (or left out)", param="dimensions"
        )
    return texts


def _vector(vector: Any, as_base64: bool) -> list[float] | str:
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


def _moderation_result(result: JSON) -> JSON:
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
        return JsonResult(usage=usage, data={**verbose_transcription(result, options), "usage": duration_usage})
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
        f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{s.text.strip()}\n" for s in result.segments
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


_SUBTITLES = {"srt": _srt, "vtt": _vtt}


# -- speech --------------------------------------------------------------------------------------
def _voice_name(voice: Any) -> str:
    """OpenAI accepts a voice name or `{"id": ...}` (custom voices)."""
    if isinstance(voice, dict):
        voice = voice.get("id")
    return str(voice or "alloy")
