from __future__ import annotations

from typing import Any

import pytest

from tollway.providers.local.rerank import MODEL_CARD, bm25_scores, fuse


@pytest.fixture(scope="module")
def reranker(embedder: Any) -> Any:
    from tollway.providers.local.rerank import HybridReranker

    return HybridReranker(embedder)


DOCUMENTS = [
    "Bananas are a yellow fruit rich in potassium.",
    "Paris is the capital and largest city of France.",
    "The French Revolution began in 1789.",
    "Berlin is the capital of Germany.",
]


def test_relevant_document_ranks_first(reranker: Any) -> None:
    scores = reranker.rerank("What is the capital of France?", DOCUMENTS)
    assert len(scores) == len(DOCUMENTS)
    assert max(range(len(scores)), key=scores.__getitem__) == 1
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_semantic_match_without_shared_words(reranker: Any) -> None:
    scores = reranker.rerank("automobile repair", ["fixing a broken car engine", "baking sourdough bread"])
    assert scores[0] > scores[1]


def test_empty_documents(reranker: Any) -> None:
    assert reranker.rerank("anything", []) == []


def test_bm25_prefers_term_matches_and_is_zero_without_overlap() -> None:
    scores = bm25_scores("capital France", ["France capital city", "a yellow fruit"])
    assert scores[0] > 0 and scores[1] == 0


def test_fusion_is_bounded_and_documented() -> None:
    assert fuse([1.0, -0.5], [3.0, 0.0]) == [1.0, 0.0]
    assert "BM25" in MODEL_CARD and "cosine" in MODEL_CARD
