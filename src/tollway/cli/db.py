"""`tollway db upgrade`."""

from __future__ import annotations

import asyncio

import typer

from tollway.settings import Settings
from tollway.store.db import create_engine, upgrade

db = typer.Typer(no_args_is_help=True, help="Database schema.")


@db.command("upgrade")
def upgrade_command() -> None:
    """Bring the database schema up to date (Alembic migrations)."""
    settings = Settings()

    async def run() -> str:
        engine = create_engine(settings.resolved_database_url())
        try:
            return await upgrade(engine)
        finally:
            await engine.dispose()

    revision = asyncio.run(run())
    typer.echo(f"database at revision {revision}")
