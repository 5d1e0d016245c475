"""Build the catalog from the YAML config (and the models that built-in providers contribute)."""

from __future__ import annotations

from collections.abc import Iterable

from tollway.catalog.catalog import Catalog, CatalogModel
from tollway.settings import ConfigError, GatewayConfig, ModelEntry
from tollway.types import Limits, Pricing


def model_from_entry(entry: ModelEntry) -> CatalogModel:
    provider, _, name = entry.id.partition(":")
    return CatalogModel(
        id=entry.id,
        provider=provider,
        upstream_model=entry.upstream_model or name,
        capabilities=frozenset(entry.capabilities),
        aliases=tuple(entry.aliases),
        context_window=entry.context_window,
        max_output_tokens=entry.max_output_tokens,
        pricing=Pricing(**entry.pricing.model_dump()),
        limits=Limits(**entry.limits.model_dump()),
        description=entry.description,
    )


def build_catalog(
    config: GatewayConfig, extra_models: Iterable[CatalogModel] = (), extra_providers: Iterable[str] = ()
) -> Catalog:
    """Configured models first (they win on id clashes), then models contributed by built-in providers."""
    providers = frozenset(config.providers) | frozenset(extra_providers)
    models = [model_from_entry(entry) for entry in config.models]
    for model in models:
        if model.provider not in providers:
            raise ConfigError(
                f"model {model.id!r} names provider {model.provider!r}, which is not configured"
            )
    seen = {model.id for model in models}
    models += [model for model in extra_models if model.id not in seen]
    for prefix, provider in config.routing.prefixes.items():
        if provider not in providers:
            raise ConfigError(
                f"routing prefix {prefix!r} points at provider {provider!r}, which is not configured"
            )
    return Catalog(models=models, providers=providers, prefixes=dict(config.routing.prefixes))
