"""Projects and API keys: the control-plane records, and minting keys.

A key is `tw-<12 chars of id>-<32 chars of secret>`: the recognisable `tw-` prefix lets secret scanners
find leaked keys, the id part lets people tell keys apart in listings, and only the SHA-256 of the whole
key is stored. The key itself is returned once, at creation.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollway.errors import Conflict, InvalidRequest, NotFound
from tollway.store.models import ApiKey, Project

KEY_PREFIX = "tw-"
SCOPES = frozenset({"models:use", "admin"})
DEFAULT_SCOPES = ("models:use",)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_id(kind: str) -> str:
    return f"{kind}_{secrets.token_hex(8)}"


def mint_key() -> tuple[str, str]:
    """A fresh key and its display prefix."""
    ident = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{ident}-{secrets.token_urlsafe(24)}"
    return key, f"{KEY_PREFIX}{ident}"


def utcnow() -> datetime:
    return datetime.now(UTC)


LIMIT_MAX = 2_000_000_000  # the limit columns are 32-bit integers on every database


@dataclass(slots=True)
class LimitValues:
    rpm: int | None = None
    tpm: int | None = None
    max_concurrency: int | None = None

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm", "max_concurrency"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= LIMIT_MAX:
                raise InvalidRequest(
                    f"{name} must be between 1 and {LIMIT_MAX:,} (or unset for no limit).", param=name
                )


@dataclass(slots=True)
class KeySpec:
    project: str
    name: str | None = None
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    models: tuple[str, ...] | None = None
    expires_at: datetime | None = None
    limits: LimitValues | None = None
    spend_cap: Decimal | None = None


class ControlStore:
    """Repository over projects and keys; every method is one short transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self._sessions = sessions

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._sessions

    async def create_project(
        self, name: str, *, credit_enforced: bool = False, limits: LimitValues | None = None
    ) -> Project:
        name = name.strip()
        if not name:
            raise InvalidRequest("Project name must not be empty.", param="name")
        limits = limits or LimitValues()
        project = Project(
            id=new_id("proj"),
            name=name,
            created_at=utcnow(),
            credit_enforced=credit_enforced,
            rpm=limits.rpm,
            tpm=limits.tpm,
            max_concurrency=limits.max_concurrency,
            credited=Decimal(0),
            spent=Decimal(0),
        )
        async with self._sessions() as session:
            session.add(project)
            try:
                await session.commit()
            except IntegrityError as exc:
                raise Conflict(f"A project named '{name}' already exists.", param="name") from exc
        return project

    async def list_projects(self) -> list[Project]:
        async with self._sessions() as session:
            return list((await session.scalars(select(Project).order_by(Project.created_at))).all())

    async def find_project(self, ref: str) -> Project:
        """A project by id or by name."""
        async with self._sessions() as session:
            project = await session.get(Project, ref)
            if project is None:
                project = await session.scalar(select(Project).where(Project.name == ref))
        if project is None:
            raise NotFound(f"No project '{ref}'. List projects with GET /admin/projects.", param="project")
        return project

    async def update_project(self, ref: str, changes: dict[str, Any]) -> Project:
        project = await self.find_project(ref)
        if "name" in changes:
            changes = {**changes, "name": changes["name"].strip()}
            if not changes["name"]:
                raise InvalidRequest("Project name must not be empty.", param="name")
        async with self._sessions() as session:
            try:
                await session.execute(update(Project).where(Project.id == project.id).values(**changes))
                await session.commit()
            except IntegrityError as exc:
                if "name" not in changes:  # the only unique column a patch can touch
                    raise
                raise Conflict(f"A project named '{changes['name']}' already exists.", param="name") from exc
        return await self.find_project(project.id)

    async def create_key(self, spec: KeySpec) -> tuple[ApiKey, str]:
        project = await self.find_project(spec.project)
        unknown = set(spec.scopes) - SCOPES
        if unknown:
            raise InvalidRequest(
                f"Unknown scope(s): {', '.join(sorted(unknown))}. Valid scopes: {', '.join(sorted(SCOPES))}.",
                param="scopes",
            )
        if spec.expires_at is not None and spec.expires_at <= utcnow():
            raise InvalidRequest("expires_at must be in the future.", param="expires_at")
        key, prefix = mint_key()
        limits = spec.limits or LimitValues()
        record = ApiKey(
            id=new_id("key"),
            project_id=project.id,
            name=spec.name,
            key_hash=hash_key(key),
            prefix=prefix,
            scopes=" ".join(sorted(set(spec.scopes))),
            models=" ".join(spec.models) if spec.models else None,
            created_at=utcnow(),
            expires_at=spec.expires_at,
            rpm=limits.rpm,
            tpm=limits.tpm,
            max_concurrency=limits.max_concurrency,
            spend_cap=spec.spend_cap,
        )
        async with self._sessions() as session:
            session.add(record)
            await session.commit()
        return record, key

    async def list_keys(self, project: str | None = None) -> list[tuple[ApiKey, Project]]:
        query = select(ApiKey, Project).join(Project, ApiKey.project_id == Project.id)
        if project is not None:
            query = query.where(ApiKey.project_id == (await self.find_project(project)).id)
        async with self._sessions() as session:
            rows = (await session.execute(query.order_by(ApiKey.created_at))).all()
        return [(row[0], row[1]) for row in rows]

    async def get_key(self, key_id: str) -> ApiKey:
        async with self._sessions() as session:
            record = await session.get(ApiKey, key_id)
        if record is None:
            raise NotFound(f"No API key '{key_id}'. List keys with GET /admin/keys.", param="id")
        return record

    async def update_key(self, key_id: str, changes: dict[str, Any]) -> ApiKey:
        await self.get_key(key_id)
        async with self._sessions() as session:
            await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(**changes))
            await session.commit()
        return await self.get_key(key_id)

    async def revoke_key(self, key_id: str) -> ApiKey:
        record = await self.get_key(key_id)
        if record.revoked_at is None:
            record = await self.update_key(key_id, {"revoked_at": utcnow()})
        return record

    async def key_by_hash(self, key_hash: str) -> tuple[ApiKey, Project] | None:
        query = (
            select(ApiKey, Project)
            .join(Project, ApiKey.project_id == Project.id)
            .where(ApiKey.key_hash == key_hash)
        )
        async with self._sessions() as session:
            row = (await session.execute(query)).first()
        return None if row is None else (row[0], row[1])
