from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tollway.settings import ConfigError, Settings, load_gateway_config, parse_gateway_config

ISSUE_CONFIG = """
providers:
  upstream:
    type: openai                      # any OpenAI-compatible server
    base_url: http://127.0.0.1:9100/v1
    api_key: ${UPSTREAM_API_KEY}      # env interpolation; secrets never stored in the DB
models:
  - id: upstream:gpt-4o-mini          # provider:model
    aliases: [gpt-4o-mini]
    capabilities: [chat, tools, vision]
    context_window: 128000
    pricing: {input_per_mtok: 0.15, output_per_mtok: 0.60}
  - id: upstream:text-embedding-3-small
    capabilities: [embeddings]
    pricing: {input_per_mtok: 0.02}
routing:
  prefixes: {"gpt-": upstream}        # a bare name with this prefix goes to this provider
"""


def test_issue_config_works_as_written() -> None:
    config = parse_gateway_config(ISSUE_CONFIG, {"UPSTREAM_API_KEY": "sk-secret"})
    assert config.providers["upstream"].api_key == "sk-secret"
    assert config.models[0].pricing.input_per_mtok == Decimal("0.15")  # exact, not a float
    assert config.routing.prefixes == {"gpt-": "upstream"}


def test_missing_env_var_names_it() -> None:
    with pytest.raises(ConfigError, match="UPSTREAM_API_KEY"):
        parse_gateway_config(ISSUE_CONFIG, {})


def test_env_default_syntax() -> None:
    config = parse_gateway_config("providers: {p: {type: openai, api_key: '${K:-fallback}'}}", {})
    assert config.providers["p"].api_key == "fallback"


def test_unknown_keys_and_bad_ids_are_explained() -> None:
    with pytest.raises(ConfigError, match="modles"):
        parse_gateway_config("modles: []", {})
    with pytest.raises(ConfigError, match="provider:model"):
        parse_gateway_config("models: [{id: nocolon}]", {})


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_gateway_config(tmp_path / "missing.yaml")


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TOLLWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TOLLWAY_ADMIN_KEY", "adm")
    settings = Settings()
    assert settings.admin_key == "adm"
    assert settings.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path / 'tollway.db'}"
    monkeypatch.setenv("TOLLWAY_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1/test")
    assert Settings().resolved_database_url().startswith("postgresql+asyncpg://")


async def test_ledger_flush_interval_is_read_bounded_and_reaches_both_meters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from tollway.metering import MemoryMeter, RedisMeter
    from tollway.metering.protocol import LEDGER_FLUSH_SECONDS
    from tollway.services import _create_meter

    assert Settings().ledger_flush_seconds == LEDGER_FLUSH_SECONDS == 0.5  # the product's and the meters'
    monkeypatch.setenv("TOLLWAY_LEDGER_FLUSH_SECONDS", "2.5")
    settings = Settings()
    meter = _create_meter(settings, None, None)  # type: ignore[arg-type]  # no session is opened here
    assert isinstance(meter, MemoryMeter) and meter._writer._interval == 2.5
    redis = Redis()  # connects on first use only: nothing is sent here
    scaled = _create_meter(settings, async_sessionmaker(), redis)  # unbound: nothing is opened here
    assert isinstance(scaled, RedisMeter)
    assert scaled.drainer._block_ms == 2500 and scaled.drainer._pace == pytest.approx(3.75)
    await redis.aclose()
    for bad in ("0", "-1", "61"):
        monkeypatch.setenv("TOLLWAY_LEDGER_FLUSH_SECONDS", bad)
        with pytest.raises(ValidationError, match="ledger_flush_seconds"):
            Settings()
