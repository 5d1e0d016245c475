"""What the CLI commands share: settings from the environment, and running a coroutine on the database."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from tollway.errors import TollwayError
from tollway.server import running_server_pid
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
            if notify:
                await notify_servers(settings)
            return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except (TollwayError, ConfigError) as exc:
        raise fail(str(exc)) from exc


async def notify_servers(settings: Settings) -> None:
    """Tell running servers that keys or projects changed: through Redis when replicas share it, and by
    SIGHUP to the server of this data directory."""
    if settings.redis_url:
        from redis.asyncio import Redis  # only with a Redis URL: its import costs start-up time

        redis = Redis.from_url(settings.redis_url)
        try:
            await redis.publish(settings.control_channel, b"invalidate")
        finally:
            await redis.aclose()
    pid = running_server_pid(settings)
    if pid is not None:
        os.kill(pid, signal.SIGHUP)
