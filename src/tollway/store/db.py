"""The database engine and session factory, and bringing the schema up to date.

SQLite (the default, a file in the data directory) and PostgreSQL (`postgresql+asyncpg://`) are both
first-class. Only the control plane and the background ledger writer touch the database; the request
hot path never does.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
HEAD_REVISION = "0001"


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        _bind_none_directly()
        # LIFO: the ledger writer gets back the connection it used last, whose prepared statements (the
        # bulk INSERTs are ~17 KB of SQL each) and page cache are warm; FIFO would rotate through the pool.
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_use_lifo=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=5, max_overflow=10, pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _bind_none_directly() -> None:
    """Give sqlite3 an adapter for None (it returns None: bound as NULL, as before). Without one, every
    None parameter goes through sqlite3's adaptation fallback, which looks up `__adapt__` on its
    protocol class and builds (then drops) an AttributeError with a formatted message: ~0.3 µs per NULL,
    and each ledger row binds two or three. `{}.get` is a C callable that answers None to anything."""
    answer_none: dict[None, None] = {}
    sqlite3.register_adapter(type(None), answer_none.get)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # WAL lets the ledger writer and admin reads proceed together; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        try:
            result = await conn.execute(text("SELECT version_num FROM alembic_version"))
        except Exception:
            return None
        return result.scalar_one_or_none()


async def upgrade(engine: AsyncEngine) -> str:
    """Run Alembic migrations to head; a no-op (one cheap query) when already there."""
    if await current_revision(engine) == HEAD_REVISION:
        return HEAD_REVISION
    async with engine.begin() as conn:
        await conn.run_sync(_run_alembic_upgrade)
    return HEAD_REVISION


def _run_alembic_upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
