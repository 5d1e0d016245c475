"""Admin request bodies (pydantic: unknown fields refused, so a typo is a 400, not a silent no-op)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tollway.money import MAX_CREDIT, SCALE
from tollway.store.control import LIMIT_MAX


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimitFields(Strict):
    rpm: int | None = Field(default=None, ge=1, le=LIMIT_MAX)
    tpm: int | None = Field(default=None, ge=1, le=LIMIT_MAX)
    max_concurrency: int | None = Field(default=None, ge=1, le=LIMIT_MAX)


class ProjectCreate(LimitFields):
    name: str = Field(min_length=1, max_length=200)
    credit_enforced: bool = False


class ProjectPatch(LimitFields):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    credit_enforced: bool | None = None

    @field_validator("name", "credit_enforced")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Left out means unchanged; null would mean "none", which a project's name and switch cannot be.
        if value is None:
            raise ValueError("must not be null; leave the field out to keep it as it is")
        return value


# A spend cap is stored as money (64-bit integers of 1e-10 dollars): bounded as a project's credit is.
class KeyCreate(LimitFields):
    project: str = Field(min_length=1)
    name: str | None = None
    scopes: list[str] = Field(default_factory=lambda: ["models:use"])
    models: list[str] | None = None
    expires_at: datetime | None = None
    spend_cap: Decimal | None = Field(default=None, ge=0, le=MAX_CREDIT, decimal_places=SCALE)

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class KeyPatch(LimitFields):
    name: str | None = None
    models: list[str] | None = None
    spend_cap: Decimal | None = Field(default=None, ge=0, le=MAX_CREDIT, decimal_places=SCALE)
