from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("profanity_check")

from tollway.providers.local.moderation import EVALUATED_CATEGORIES, ProfanityModerator


@pytest.fixture(scope="module")
def moderator() -> Any:
    engine = ProfanityModerator()
    engine.load()
    return engine


def test_insult_is_flagged_and_greeting_passes(moderator: Any) -> None:
    insult, greeting = moderator.classify(["you are a stupid idiot", "Hello! How are you today?"])
    assert insult["flagged"] and insult["categories"]["harassment"]
    assert insult["category_scores"]["harassment"] > 0.9
    assert not greeting["flagged"]
    assert greeting["category_scores"]["harassment"] < 0.5


def test_only_evaluated_categories_are_reported(moderator: Any) -> None:
    (result,) = moderator.classify(["some text"])
    assert EVALUATED_CATEGORIES == ("harassment",)
    assert set(result["categories"]) == set(EVALUATED_CATEGORIES)
    assert set(result["category_scores"]) == set(EVALUATED_CATEGORIES)


def test_threshold_is_configurable() -> None:
    strict = ProfanityModerator(threshold=0.0)
    assert strict.classify(["Hello! How are you today?"])[0]["flagged"]
    assert strict.classify([]) == []
