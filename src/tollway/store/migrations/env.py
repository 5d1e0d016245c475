"""Alembic environment: runs on the connection Tollway hands over (see store/db.py)."""

from __future__ import annotations

from alembic import context

from tollway.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `tollway db upgrade`, which supplies the connection")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
