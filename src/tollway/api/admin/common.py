"""What every admin route shares: the admin check and how records are shown."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from tollway.api.http import presented_key, services
from tollway.errors import AuthenticationFailed
from tollway.pipeline.auth import require_scope
from tollway.store.models import ApiKey, Project


async def require_admin(request: web.Request) -> None:
    key = presented_key(request)
    svc = services(request)
    if svc.auth.is_admin_key(key):
        return
    if not key:
        raise AuthenticationFailed("The admin API needs 'Authorization: Bearer <TOLLWAY_ADMIN_KEY>'.")
    require_scope(await svc.auth.authenticate(key), "admin")


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def money(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def limits_view(record: ApiKey | Project) -> dict[str, int | None]:
    return {"rpm": record.rpm, "tpm": record.tpm, "max_concurrency": record.max_concurrency}


def project_view(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "object": "project",
        "name": project.name,
        "created_at": iso(project.created_at),
        "credit_enforced": project.credit_enforced,
        "limits": limits_view(project),
    }


def key_view(key: ApiKey, project: Project | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": key.id,
        "object": "api_key",
        "name": key.name,
        "prefix": key.prefix,
        "project_id": key.project_id,
        "scopes": key.scopes.split(),
        "models": key.models.split() if key.models else None,
        "created_at": iso(key.created_at),
        "expires_at": iso(key.expires_at),
        "revoked_at": iso(key.revoked_at),
        "limits": limits_view(key),
        "spend_cap": money(key.spend_cap),
    }
    if project is not None:
        view["project"] = project.name
    return view
