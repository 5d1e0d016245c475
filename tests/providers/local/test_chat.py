from __future__ import annotations

from typing import Any

import pytest

from tollway.providers.local.chat import Generation
from tollway.providers.local.errors import LocalModelUnsupported

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_answers_a_simple_question(chat_model: Any) -> None:
    result = chat_model.chat(QUESTION, temperature=0.0, max_tokens=32)
    assert "Paris" in result.text
    assert result.finish_reason == "stop"
    assert result.prompt_tokens > 10
    assert 0 < result.completion_tokens <= 32


def test_stream_yields_pieces_then_summary(chat_model: Any) -> None:
    items = list(chat_model.stream_chat(QUESTION, temperature=0.0, max_tokens=32, seed=1))
    *pieces, summary = items
    assert isinstance(summary, Generation)
    assert all(isinstance(p, str) for p in pieces)
    assert "".join(pieces) == summary.text
    assert summary == chat_model.chat(QUESTION, temperature=0.0, max_tokens=32, seed=1)


def test_same_seed_gives_same_text(chat_model: Any) -> None:
    prompt = [{"role": "user", "content": "Write one sentence about the sea."}]
    first = chat_model.chat(prompt, temperature=1.0, seed=7, max_tokens=24)
    again = chat_model.chat(prompt, temperature=1.0, seed=7, max_tokens=24)
    assert first.text == again.text


def test_max_tokens_and_stop(chat_model: Any) -> None:
    prompt = [{"role": "user", "content": "Count from one to fifty in words."}]
    assert chat_model.chat(prompt, max_tokens=5, temperature=0.0).finish_reason == "length"
    stopped = chat_model.chat(QUESTION, temperature=0.0, stop="Paris")  # one string, as OpenAI allows
    assert "Paris" not in stopped.text and stopped.finish_reason == "stop"


def test_legacy_completion(chat_model: Any) -> None:
    result = chat_model.complete("Q: What is the capital of France?\nA:", temperature=0.0, max_tokens=12)
    assert "Paris" in result.text
    assert result.prompt_tokens < 20


def test_abandoned_stream_releases_the_model(chat_model: Any) -> None:
    stream = chat_model.stream_chat(QUESTION, temperature=0.0, max_tokens=64)
    next(stream)
    stream.close()
    assert "Paris" in chat_model.chat(QUESTION, temperature=0.0, max_tokens=32).text


def test_prompt_longer_than_context_is_refused(chat_model: Any) -> None:
    huge = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(LocalModelUnsupported):
        chat_model.chat(huge)


def test_non_positive_max_tokens_is_refused(chat_model: Any) -> None:
    with pytest.raises(LocalModelUnsupported) as info:
        chat_model.chat(QUESTION, max_tokens=0)
    assert info.value.param == "max_tokens"
