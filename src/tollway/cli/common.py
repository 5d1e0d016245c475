"""What the CLI commands share: settings from the environment, and running a coroutine on the database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from redis.asyncio import Redis

from tollway.errors import TollwayError
from tollway.services import CONTROL_CHANNEL
from tollway.settings import ConfigError, Settings
from tollway.store.control import ControlStore
from tollway.store.db import create_engine, session_factory, upgrade

T = TypeVar("T")


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def with_control(action: Callable[[ControlStore], Awaitable[T]], *, notify: bool = False) -> T:
    """Run `action` against the configured database (migrated first); map errors to a clean exit."""
    settings = Settings()

    async def run() -> T:
        engine = create_engine(settings.resolved_database_url())
        try:
            await upgrade(engine)
            result = await action(ControlStore(session_factory(engine)))
            if notify and settings.redis_url:
                redis = Redis.from_url(settings.redis_url)
                await redis.publish(CONTROL_CHANNEL, b"invalidate")
                await redis.aclose()
            return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except (TollwayError, ConfigError) as exc:
        raise fail(str(exc)) from exc
