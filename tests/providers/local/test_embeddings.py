from __future__ import annotations

from typing import Any

import pytest

np = pytest.importorskip("numpy")


def test_vectors_are_384_dim_and_unit_length(embedder: Any) -> None:
    vectors = embedder.embed(["hello world", "a second sentence"])
    assert vectors.shape == (2, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_paraphrases_are_closer_than_unrelated_sentences(embedder: Any) -> None:
    a, b, unrelated = embedder.embed(
        [
            "A man is playing a guitar on stage.",
            "Someone performs a song with a guitar at a concert.",
            "The central bank raised interest rates again.",
        ]
    )
    assert float(a @ b) > 0.5
    assert float(a @ b) > float(a @ unrelated) + 0.3


def test_batching_does_not_change_vectors(embedder: Any) -> None:
    from tollway.providers.local.embeddings import MiniLMEmbedder

    texts = [f"sentence {i} with some words" + " padding" * i for i in range(5)]
    small_batches = MiniLMEmbedder(batch_size=2)
    small_batches.load()
    assert np.allclose(small_batches.embed(texts), embedder.embed(texts), atol=1e-4)


def test_empty_input_gives_empty_matrix(embedder: Any) -> None:
    assert embedder.embed([]).shape == (0, 384)


def test_count_tokens_includes_special_tokens_and_is_not_truncated(embedder: Any) -> None:
    short, long = embedder.count_tokens(["hello world", "word " * 400])
    assert short == 4  # [CLS] hello world [SEP]
    assert long == 402
