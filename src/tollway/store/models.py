"""The database schema (SQLAlchemy 2 declarative). One place, so migrations have one source of truth.

Amounts of money are exact decimals in dollars. They are stored as integers of 1e-10 dollars (`Money`),
because SQLite has no exact decimal type (its NUMERIC is a float): integers keep SUM() exact on both
SQLite and PostgreSQL (`tollway.money`). Aggregates over money columns come back as integer units: use
`money.to_dollars`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from tollway.money import to_dollars, to_units


class Money(TypeDecorator[Decimal]):
    """Exact dollars stored as a BIGINT of 1e-10 dollar units (up to about $922 million)."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        return None if value is None else to_units(Decimal(value))

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else to_dollars(int(value))


MONEY = Money()


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: DateTime(timezone=True),
        Decimal: MONEY,
        dict[str, Any]: JSON,
    }


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]
    credit_enforced: Mapped[bool] = mapped_column(Boolean, default=False)
    rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_concurrency: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Running totals kept in the same transactions that add credit entries / ledger rows, so a balance
    # (credited - spent) is one row read, never a scan of the ledger.
    credited: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    spent: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the whole key
    prefix: Mapped[str] = mapped_column(String(24))  # shown in listings so people can tell keys apart
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated
    models: Mapped[str | None] = mapped_column(Text, nullable=True)  # space-separated allow-list
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_concurrency: Mapped[int | None] = mapped_column(Integer, nullable=True)
    spend_cap: Mapped[Decimal | None] = mapped_column(MONEY, nullable=True)


class CreditEntry(Base):
    """A top-up or adjustment. A project's balance is the sum of its entries minus its ledger costs."""

    __tablename__ = "credit_entries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal]
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime]


class UsageRow(Base):
    """One row per call. `request_id` is the primary key, so a replayed write can never count twice."""

    __tablename__ = "usage_ledger"

    request_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    created_at: Mapped[datetime]
    project_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    surface: Mapped[str] = mapped_column(String(20))
    operation: Mapped[str] = mapped_column(String(30))
    model_requested: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model_served: Mapped[str | None] = mapped_column(String(200), nullable=True)
    backend: Mapped[str | None] = mapped_column(String(100), nullable=True)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    images: Mapped[int] = mapped_column(Integer, default=0)
    audio_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    characters: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    ttfb_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(60), nullable=True)
    streamed: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_usage_project_time", "project_id", "created_at"),
        Index("ix_usage_key_time", "key_id", "created_at"),
        Index("ix_usage_time", "created_at"),
    )


class StoredResponse(Base):
    """A Responses API object kept for `GET /v1/responses/{id}` and `previous_response_id`."""

    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(40), index=True)
    created_at: Mapped[datetime]
    model: Mapped[str] = mapped_column(String(200))
    response: Mapped[dict[str, Any]]  # the response object as returned to the caller
    history: Mapped[dict[str, Any]]  # {"messages": [...]} the chat conversation up to and including it
