"""Moderation with ``alt-profanity-check``: a linear SVM over TF-IDF, trained on offensive language.

The model outputs one probability: that a text is profane or offensive. Of OpenAI's moderation
categories that signal covers only ``harassment`` (insults, abuse and profanity aimed at people);
it says nothing reliable about hate, self-harm, sexual content, violence or illicit activity, so
those are *not evaluated* here rather than reported as zero. ``classify`` is thread-safe (read-only
scikit-learn objects).
"""

from __future__ import annotations

import threading
from typing import Any

from tollway.providers.local._deps import require

MODEL_ID = "local:profanity-check"
EVALUATED_CATEGORIES: tuple[str, ...] = ("harassment",)
NOT_EVALUATED_CATEGORIES: tuple[str, ...] = (
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
MODEL_CARD = (
    "alt-profanity-check 1.9.1: linear SVM (calibrated) over character/word TF-IDF, trained on "
    "offensive-language and toxic-comment datasets. English only. Its single probability is reported "
    "as the 'harassment' score; no other moderation category is evaluated locally."
)


class ProfanityModerator:
    """Scores texts for harassment/profanity; ``flagged`` when the probability >= threshold."""

    def __init__(self, *, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._predict_prob: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._predict_prob is not None

    def load(self) -> None:
        """Import the package: it unpickles its vectorizer and model at import time (~0.5 s)."""
        with self._lock:
            if self._predict_prob is None:
                module = require(MODEL_ID, "profanity_check", "alt-profanity-check")
                self._predict_prob = module.predict_prob

    def classify(self, texts: list[str]) -> list[dict[str, Any]]:
        """One result per text: {flagged, categories: {harassment: bool}, category_scores: {...}}."""
        self.load()
        if not texts:
            return []
        probabilities = self._predict_prob(texts)
        return [self._result(float(p)) for p in probabilities]

    def _result(self, score: float) -> dict[str, Any]:
        flagged = score >= self.threshold
        return {
            "flagged": flagged,
            "categories": {"harassment": flagged},
            "category_scores": {"harassment": score},
        }
