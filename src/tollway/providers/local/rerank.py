"""Reranking without a cross-encoder: MiniLM cosine similarity fused with BM25.

No packaged cross-encoder exists offline (every candidate downloads weights at run time), so
relevance is computed from the bi-encoder in ``embeddings.py`` plus lexical BM25 over the
documents of the request. ``HybridReranker`` also forwards ``embed``/``count_tokens`` so a single
loaded MiniLM serves both the embeddings and the rerank capability of ``local:all-minilm-l6-v2``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tollway.providers.local.embeddings import MiniLMEmbedder

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

SEMANTIC_WEIGHT = 0.7
LEXICAL_WEIGHT = 1.0 - SEMANTIC_WEIGHT
BM25_K1 = 1.2
BM25_B = 0.75

MODEL_CARD = f"""\
Rerank scores from local:all-minilm-l6-v2 are a fusion, not a cross-encoder:
  score = {SEMANTIC_WEIGHT:.1f} * max(0, cosine(query, document))
        + {LEXICAL_WEIGHT:.1f} * bm25(query, document) / max over documents of bm25
cosine uses all-MiniLM-L6-v2 (int8 ONNX) sentence embeddings, mean-pooled and L2-normalised;
documents are truncated to 256 tokens for the embedding. BM25 uses k1={BM25_K1}, b={BM25_B},
lower-cased word tokens minus a short English stop-word list, and IDF computed over the documents
of this request only, so the lexical part is relative to the request's documents (it is 0 for all
documents when none shares a word with the query). Scores lie in [0, 1]; higher is more relevant.
"""

_WORD = re.compile(r"\w+")
_STOP_WORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "how", "in",
        "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "what",
        "when", "where", "which", "who", "why", "will", "with",
    }
)  # fmt: skip


def lexical_terms(text: str) -> list[str]:
    """Lower-cased word tokens without stop words (which would only add noise to BM25)."""
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS]


def bm25_scores(query: str, documents: list[str]) -> list[float]:
    """Okapi BM25 of each document for the query, IDF over ``documents`` (non-negative variant)."""
    docs = [lexical_terms(d) for d in documents]
    if not docs:
        return []
    avg_len = max(sum(len(d) for d in docs) / len(docs), 1e-9)
    doc_freq = Counter(term for d in docs for term in set(d))
    n = len(docs)
    scores = []
    for terms in docs:
        tf = Counter(terms)
        norm = BM25_K1 * (1 - BM25_B + BM25_B * len(terms) / avg_len)
        score = 0.0
        for term in set(lexical_terms(query)):
            if tf[term]:
                idf = math.log(1 + (n - doc_freq[term] + 0.5) / (doc_freq[term] + 0.5))
                score += idf * tf[term] * (BM25_K1 + 1) / (tf[term] + norm)
        scores.append(score)
    return scores


def fuse(cosines: Sequence[float], bm25: Sequence[float]) -> list[float]:
    """Weighted sum of clipped cosine and max-normalised BM25 (see MODEL_CARD)."""
    top = max(bm25, default=0.0)
    lexical = [s / top if top > 0 else 0.0 for s in bm25]
    semantic = [min(1.0, max(0.0, float(c))) for c in cosines]
    return [
        min(1.0, SEMANTIC_WEIGHT * c + LEXICAL_WEIGHT * lex) for c, lex in zip(semantic, lexical, strict=True)
    ]


class HybridReranker:
    """Scores documents for a query; thread-safe after ``load()`` like the embedder it wraps."""

    def __init__(self, embedder: MiniLMEmbedder | None = None) -> None:
        self.embedder = embedder or MiniLMEmbedder()

    @property
    def loaded(self) -> bool:
        return self.embedder.loaded

    def load(self) -> None:
        self.embedder.load()

    def rerank(self, query: str, documents: list[str]) -> list[float]:
        """Relevance score in [0, 1] for each document, in input order."""
        if not documents:
            return []
        vectors = self.embedder.embed([query, *documents])
        cosines = (vectors[1:] @ vectors[0]).tolist()
        return fuse(cosines, bm25_scores(query, documents))

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        return self.embedder.embed(texts)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return self.embedder.count_tokens(texts)
