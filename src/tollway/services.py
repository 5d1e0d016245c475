"""Services: the one container handed to routes, built in the app's lifespan (never at import time)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollway.background import stop_task
from tollway.catalog import Catalog, CatalogModel
from tollway.catalog.build import build_catalog
from tollway.catalog.tokens import TokenCounter
from tollway.metering import Meter
from tollway.observability import Metrics

if TYPE_CHECKING:  # redis-py loads only with a Redis URL (its import costs ~0.1-0.2 s of start-up)
    from redis.asyncio import Redis
from tollway.pipeline import Gateway
from tollway.pipeline.auth import KeyAuthenticator
from tollway.providers.base import Provider, ProviderConfig
from tollway.providers.registry import create_provider
from tollway.settings import GatewayConfig, Settings
from tollway.store.control import ControlStore
from tollway.store.db import create_engine, session_factory, upgrade

log = logging.getLogger("tollway.services")


@dataclass
class Services:
    settings: Settings
    config: GatewayConfig
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    control: ControlStore
    auth: KeyAuthenticator
    http: aiohttp.ClientSession
    catalog: Catalog
    providers: dict[str, Provider]
    meter: Meter | None
    redis: Redis | None
    tokens: TokenCounter
    metrics: Metrics
    gateway: Gateway
    closing: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def control_changed(self) -> None:
        """Keys or projects changed: drop cached principals here and on every other replica."""
        self.auth.invalidate()
        if self.redis is not None:
            await self.redis.publish(self.settings.control_channel, b"invalidate")

    async def aclose(self) -> None:
        self.closing = True
        for task in self._tasks:
            await stop_task(task)
        if self.meter is not None:
            await self.meter.aclose()
        for provider in self.providers.values():
            await provider.aclose()
        await self.http.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


async def build_services(settings: Settings) -> Services:
    config = settings.load_gateway_config()
    engine = create_engine(settings.resolved_database_url())
    if settings.auto_migrate:
        await upgrade(engine)
    sessions = session_factory(engine)
    control = ControlStore(sessions)
    http = _http_session()
    providers = {
        name: create_provider(ProviderConfig(name, entry.type, entry.options()), http)
        for name, entry in config.providers.items()
    }
    local_models = _add_local_provider(settings, providers)
    catalog = build_catalog(config, local_models, extra_providers=providers)
    redis = _redis(settings.redis_url) if settings.redis_url else None
    meter = _create_meter(settings, sessions, redis)
    tokens = TokenCounter()
    metrics = Metrics()
    services = Services(
        settings=settings,
        config=config,
        engine=engine,
        sessions=sessions,
        control=control,
        auth=KeyAuthenticator(control, admin_key=settings.admin_key, ttl=settings.key_cache_ttl),
        http=http,
        catalog=catalog,
        providers=providers,
        meter=meter,
        redis=redis,
        tokens=tokens,
        metrics=metrics,
        gateway=Gateway(catalog, providers, meter, tokens, metrics),
    )
    await _start(services)
    return services


async def _start(services: Services) -> None:
    for provider in services.providers.values():
        await provider.start()
    if services.meter is not None:
        await services.meter.start()
    if services.redis is not None:
        services._tasks.append(asyncio.create_task(_follow_control_channel(services)))
    # Token vocabularies (~60 MB each) load on first use, not here: most calls never need one.


def _redis(url: str) -> Redis:
    from redis.asyncio import BlockingConnectionPool, Redis

    # A blocking pool: under a burst, callers wait for a connection instead of failing with
    # MaxConnectionsError (redis-py's default pool raises).
    pool = BlockingConnectionPool.from_url(url, max_connections=64, timeout=10)
    return Redis(connection_pool=pool)


def _http_session() -> aiohttp.ClientSession:
    # One pooled keep-alive session for every upstream; no per-host cap beyond the connector's total.
    connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=60)
    return aiohttp.ClientSession(connector=connector)


def _create_meter(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], redis: Redis | None
) -> Meter | None:
    if not settings.metering:
        return None
    if redis is not None:
        from tollway.metering import RedisMeter

        consumer = f"{socket.gethostname()}-{os.getpid()}"
        return RedisMeter(
            redis,
            sessions,
            prefix=settings.redis_prefix,
            flush_interval=settings.ledger_flush_seconds,
            consumer_name=consumer,
            max_call_seconds=settings.max_call_seconds,
            reclaim_idle_ms=int(settings.ledger_reclaim_seconds * 1000),
        )
    from tollway.metering import MemoryMeter

    return MemoryMeter(sessions, flush_interval=settings.ledger_flush_seconds)


def _add_local_provider(settings: Settings, providers: dict[str, Provider]) -> list[CatalogModel]:
    """The offline `local` provider, when enabled and not shadowed by a configured provider of that name."""
    if not settings.local_models or "local" in providers:
        return []
    try:
        from tollway.providers.local.provider import LocalProvider, local_catalog_models
    except ImportError:
        return []
    providers["local"] = LocalProvider()
    return local_catalog_models()


async def _follow_control_channel(services: Services) -> None:
    assert services.redis is not None
    pubsub = services.redis.pubsub()
    await pubsub.subscribe(services.settings.control_channel)
    try:
        async for message in pubsub.listen():
            if message.get("type") == "message":
                services.auth.invalidate()
    finally:
        await pubsub.aclose()
