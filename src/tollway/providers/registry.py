"""Provider type name -> factory. A new provider type is one module and one line here."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from tollway.providers.base import Provider, ProviderConfig
from tollway.settings import ConfigError

Factory = Callable[[ProviderConfig, aiohttp.ClientSession], Provider]


def _openai(config: ProviderConfig, session: aiohttp.ClientSession) -> Provider:
    from tollway.providers.openai_compat import OpenAICompatProvider

    return OpenAICompatProvider(config, session)


def _anthropic(config: ProviderConfig, session: aiohttp.ClientSession) -> Provider:
    from tollway.providers.anthropic import AnthropicProvider

    return AnthropicProvider(config, session)


FACTORIES: dict[str, Factory] = {
    "openai": _openai,
    "openai_compatible": _openai,
    "anthropic": _anthropic,
}


def create_provider(config: ProviderConfig, session: aiohttp.ClientSession) -> Provider:
    factory = FACTORIES.get(config.type)
    if factory is None:
        known = ", ".join(sorted(FACTORIES))
        raise ConfigError(f"provider {config.name!r} has unknown type {config.type!r}; known types: {known}")
    return factory(config, session)
