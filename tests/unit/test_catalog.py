from __future__ import annotations

import pytest

from tests.unit.test_settings import ISSUE_CONFIG
from tollway.catalog.build import build_catalog
from tollway.errors import InvalidRequest, ModelNotFound
from tollway.settings import ConfigError, parse_gateway_config
from tollway.types import Operation


@pytest.fixture
def catalog():  # type: ignore[no-untyped-def]
    return build_catalog(parse_gateway_config(ISSUE_CONFIG, {"UPSTREAM_API_KEY": "k"}))


def test_resolves_id_alias_provider_and_prefix(catalog) -> None:  # type: ignore[no-untyped-def]
    assert catalog.resolve("upstream:gpt-4o-mini", Operation.CHAT).id == "upstream:gpt-4o-mini"
    assert catalog.resolve("gpt-4o-mini", Operation.CHAT).id == "upstream:gpt-4o-mini"
    routed = catalog.resolve("gpt-4.1", Operation.CHAT)
    assert (routed.id, routed.provider, routed.upstream_model, routed.listed) == (
        "upstream:gpt-4.1",
        "upstream",
        "gpt-4.1",
        False,
    )
    assert catalog.resolve("upstream:anything", Operation.EMBEDDING).upstream_model == "anything"


def test_unknown_model_says_how_to_list(catalog) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelNotFound, match="GET /v1/models"):
        catalog.resolve("claude-3", Operation.CHAT)


def test_capability_mismatch_names_capable_models(catalog) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequest, match="upstream:text-embedding-3-small"):
        catalog.resolve("gpt-4o-mini", Operation.EMBEDDING)


def test_empty_model_name(catalog) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequest, match="model"):
        catalog.resolve("", Operation.CHAT)


def test_models_must_name_configured_providers() -> None:
    config = parse_gateway_config("models: [{id: 'ghost:m'}]", {})
    with pytest.raises(ConfigError, match="ghost"):
        build_catalog(config)
