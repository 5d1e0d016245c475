"""The `local` provider: OpenAI-shaped requests in, offline engines run, OpenAI-shaped answers out.

Engines (``chat.py``, ``embeddings.py``, ...) know nothing of HTTP or OpenAI's wire shapes. This class
reads the canonical request, calls the engine through a ``ModelPool`` (blocking work runs in worker
threads, within a memory bound and a per-model concurrency bound, so the event loop keeps serving), and
returns the answer the OpenAI API would give (shaped in ``openai_chat.py`` and ``openai_shapes.py``) with
the usage metering needs: tokens for chat and embeddings, characters for speech, audio seconds for
transcription, images for upscale.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tollway.catalog import CatalogModel
from tollway.errors import InvalidRequest, ModelNotFound, UpstreamUnavailable
from tollway.providers.base import Provider
from tollway.providers.local.catalog import LOCAL_MODELS, MODELS_BY_ID, LocalModel
from tollway.providers.local.errors import BACKEND
from tollway.providers.local.openai_chat import (
    ChunkWriter,
    LocalStream,
    chat_arguments,
    chat_completion,
    completion_arguments,
    generation_result,
    include_usage,
    text_completion,
)
from tollway.providers.local.openai_shapes import (
    TranscriptionOptions,
    document_text,
    embedding_inputs,
    embedding_vector,
    moderation_inputs,
    moderation_result,
    rerank_answer,
    transcription_result,
    voice_aliases,
    voice_name,
)
from tollway.providers.local.pool import ModelPool
from tollway.providers.local.transcription import Transcription
from tollway.types import BinaryResult, ChatStream, JsonResult, ModelRequest, Pricing, Target, Usage

# Calls each engine may run at once. MiniLM and Lanczos are thread-safe and quick; llama.cpp, hibari
# and whisper each serialise internally anyway, so a second slot would only hold a worker thread.
CONCURRENCY: Mapping[str, int] = {"local:all-minilm-l6-v2": 2, "local:lanczos": 2}
MAX_MEMORY_MB = 1536  # all six models fit (docs/local-models.md); lower it to trade latency for RAM
MAX_WORKERS = 4


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
        return generation_result(generation, chat_completion(generation, target.model_id))

    async def chat_stream(self, request: ModelRequest, target: Target) -> ChatStream:
        messages, sampling = chat_arguments(request.body)
        pieces = self.pool.stream(_local_id(target), "stream_chat", messages, **sampling)
        return await LocalStream.open(pieces, ChunkWriter("chat", target.model_id), include_usage(request))

    async def completion(self, request: ModelRequest, target: Target) -> JsonResult:
        prompt, sampling = completion_arguments(request.body)
        generation = await self.pool.run(_local_id(target), "complete", prompt, **sampling)
        answer = text_completion(generation, target.model_id, _echo(request, prompt))
        return generation_result(generation, answer)

    async def completion_stream(self, request: ModelRequest, target: Target) -> ChatStream:
        prompt, sampling = completion_arguments(request.body)
        pieces = self.pool.stream(_local_id(target), "stream_complete", prompt, **sampling)
        writer = ChunkWriter("completion", target.model_id, _echo(request, prompt))
        return await LocalStream.open(pieces, writer, include_usage(request))

    # -- embeddings and rerank --------------------------------------------------------------
    async def embeddings(self, request: ModelRequest, target: Target) -> JsonResult:
        model = _local_model(target)
        texts = embedding_inputs(request.body, model)
        vectors = await self.pool.run(model.id, "embed", texts)
        tokens = sum(await self.pool.run(model.id, "count_tokens", texts))
        as_base64 = request.body.get("encoding_format") == "base64"
        data = [
            {"object": "embedding", "index": i, "embedding": embedding_vector(v, as_base64)}
            for i, v in enumerate(vectors)
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
            "results": [moderation_result(r) for r in results],
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
        voice = voice_name(body.get("voice"))
        speed = float(body.get("speed") or 1.0)
        fmt = str(body.get("response_format") or "mp3")
        audio, content_type = await self.pool.run(_local_id(target), "synthesize", text, voice, speed, fmt)
        return BinaryResult(audio, content_type, Usage(characters=len(text)))

    async def voices(self, model_id: str = "local:hibari") -> list[dict[str, Any]]:
        """The voices a local speech model can use offline (GET /v1/audio/voices)."""
        voices: list[dict[str, Any]] = await self.pool.run(model_id, "voices")
        return [
            {**voice, "model": model_id, "openai_aliases": voice_aliases(voice["id"])} for voice in voices
        ]

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


def _echo(request: ModelRequest, prompt: str) -> str:
    """The prompt, when a completion asks for it to be echoed before the generated text."""
    return prompt if request.body.get("echo") is True else ""
