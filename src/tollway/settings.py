"""Settings: `TOLLWAY_*` environment variables plus an optional YAML file of providers, models and routing.

Environment variables decide *how the process runs* (database, Redis, admin key, data directory, limits
on bodies). The YAML file decides *what it serves* (providers, models, routing). `${VAR}` and
`${VAR:-default}` inside the YAML are replaced from the environment, so secrets stay out of the file.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which setting and why."""


class PricingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_per_mtok: Decimal = Decimal(0)
    cached_input_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None
    output_per_mtok: Decimal = Decimal(0)
    per_request: Decimal = Decimal(0)
    per_image: Decimal = Decimal(0)
    per_audio_second: Decimal = Decimal(0)
    per_character: Decimal = Decimal(0)
    per_search_unit: Decimal = Decimal(0)


class LimitsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    max_concurrency: int | None = Field(default=None, ge=1)


class ProviderEntry(BaseModel):
    """One upstream. Options beyond `type` are handed to the provider type (base_url, api_key, ...)."""

    model_config = ConfigDict(extra="allow")

    type: str
    base_url: str | None = None
    api_key: str | None = None
    timeout: float = Field(default=600.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        return self.model_dump(exclude={"type"})


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    aliases: list[str] = Field(default_factory=list)
    upstream_model: str | None = None  # the name the provider knows it by; default: the part after ':'
    capabilities: list[str] = Field(default_factory=lambda: ["chat"])
    context_window: int | None = None
    max_output_tokens: int | None = None
    pricing: PricingConfig = Field(default_factory=PricingConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    description: str | None = None

    @field_validator("id")
    @classmethod
    def _id_has_provider(cls, value: str) -> str:
        if ":" not in value or value.startswith(":") or value.endswith(":"):
            raise ValueError(f"model id {value!r} must be 'provider:model'")
        return value


class RoutingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefixes: dict[str, str] = Field(default_factory=dict)  # bare-name prefix -> provider
    default_chat_model: str | None = None
    default_embedding_model: str | None = None


class GatewayConfig(BaseModel):
    """The YAML file's shape."""

    model_config = ConfigDict(extra="forbid")

    providers: dict[str, ProviderEntry] = Field(default_factory=dict)
    models: list[ModelEntry] = Field(default_factory=list)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)


class Settings(BaseSettings):
    """Process settings from `TOLLWAY_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="TOLLWAY_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None  # default: sqlite+aiosqlite:///<data_dir>/tollway.db
    redis_url: str | None = None  # set it to share limits, credits and the ledger across replicas
    redis_prefix: str = "tollway:"  # every Redis key and channel starts with it (several gateways, one Redis)
    admin_key: str | None = None
    config: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body_bytes: int = 32 * 1024 * 1024
    metering: bool = True  # keys are always checked; this switches limits, credits and the ledger
    # Longest a call may hold its reservations (concurrency slot, credit hold). A replica that dies mid-call
    # cannot return them; after this long they are returned automatically (scale-out mode).
    max_call_seconds: float = 600.0
    # How long a ledger record read by a replica may stay unacknowledged before another replica takes it
    # over (a replica that died between reading and writing it).
    ledger_reclaim_seconds: float = 30.0
    # How often the ledger rows of finished calls are written to SQL, each time in one transaction. Longer
    # means fewer, larger transactions. Embedded, a process killed with kill -9 loses at most this long of
    # rows; scale-out, rows wait in the Redis stream (nothing is lost) and reach SQL within ~1.5x this.
    # The default is the meters' own, `metering.protocol.LEDGER_FLUSH_SECONDS` (why 0.5 s: see there).
    ledger_flush_seconds: float = Field(default=0.5, gt=0, le=60)
    auto_migrate: bool = True
    key_cache_ttl: float = 30.0
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False
    local_models: bool = True  # register the offline `local` provider when its packages are installed

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'tollway.db').resolve()}"

    @property
    def control_channel(self) -> str:
        return f"{self.redis_prefix}control"

    def load_gateway_config(self) -> GatewayConfig:
        return load_gateway_config(self.config) if self.config else GatewayConfig()


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate_env(text: str, env: dict[str, str] | None = None) -> str:
    """Replace `${VAR}` / `${VAR:-default}`; an unset variable without a default is a ConfigError."""
    source = os.environ if env is None else env

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in source:
            return source[name]
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is referenced in the config but not set")

    return _ENV_REF.sub(substitute, text)


def load_gateway_config(path: Path, env: dict[str, str] | None = None) -> GatewayConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    return parse_gateway_config(text, env, source=str(path))


def parse_gateway_config(
    text: str, env: dict[str, str] | None = None, source: str = "config"
) -> GatewayConfig:
    try:
        data = yaml.safe_load(interpolate_env(text, env)) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping with providers, models and routing")
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{source}: {problems}") from exc
