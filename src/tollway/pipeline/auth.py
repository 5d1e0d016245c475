"""API key -> Principal, from memory.

Keys are looked up by the SHA-256 of the presented key. Found keys are cached for `ttl` seconds; unknown
keys are remembered briefly too, so a flood of bad keys cannot turn into a flood of database queries.
Changes made through the admin API invalidate the cache at once (on every replica, through the control
channel when Redis is configured), so a revoked key fails on its next request.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

from tollway.errors import AuthenticationFailed, PermissionDenied
from tollway.store.control import KEY_PREFIX, ControlStore, hash_key
from tollway.store.models import ApiKey, Project
from tollway.types import Limits, Principal

NEGATIVE_TTL = 5.0
MAX_NEGATIVE = 10_000

ADMIN_PRINCIPAL = Principal(
    key_id="admin",
    key_prefix="admin",
    project_id="",
    project_name="",
    scopes=frozenset({"admin"}),  # the admin key runs the control plane; model calls need a project key
)


@dataclass(slots=True)
class _Entry:
    principal: Principal | None
    fetched_at: float
    expires_at: float | None  # the key's own expiry, as a clock value


def principal_from_records(key: ApiKey, project: Project) -> Principal:
    return Principal(
        key_id=key.id,
        key_prefix=key.prefix,
        project_id=project.id,
        project_name=project.name,
        scopes=frozenset(key.scopes.split()),
        models=frozenset(key.models.split()) if key.models else None,
        expires_at=key.expires_at,
        key_limits=Limits(key.rpm, key.tpm, key.max_concurrency),
        project_limits=Limits(project.rpm, project.tpm, project.max_concurrency),
        spend_cap=key.spend_cap,
        credit_enforced=project.credit_enforced,
    )


class KeyAuthenticator:
    def __init__(
        self,
        store: ControlStore,
        *,
        admin_key: str | None,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        self._store = store
        self._admin_key = admin_key.encode() if admin_key else None
        self._ttl = ttl
        self._clock = clock
        self._wall = wall_clock
        self._entries: dict[str, _Entry] = {}

    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise AuthenticationFailed(
                "Missing API key. Send it as 'Authorization: Bearer <key>' (or 'x-api-key: <key>')."
            )
        if not token.startswith(KEY_PREFIX):
            if self.is_admin_key(token):
                return ADMIN_PRINCIPAL
            raise AuthenticationFailed(_invalid_message(token))
        digest = hash_key(token)
        now = self._clock()
        entry = self._entries.get(digest)
        if entry is None or now - entry.fetched_at > (self._ttl if entry.principal else NEGATIVE_TTL):
            entry = await self._load(digest, now)
        principal = entry.principal
        if principal is None:
            raise AuthenticationFailed(_invalid_message(token))
        if entry.expires_at is not None and self._wall() >= entry.expires_at:
            raise AuthenticationFailed("This API key has expired. Create a new key.")
        return principal

    def is_admin_key(self, token: str | None) -> bool:
        return bool(self._admin_key and token and hmac.compare_digest(token.encode(), self._admin_key))

    def invalidate(self) -> None:
        """Forget every cached key: called on any key or project change (rare, and always correct)."""
        self._entries.clear()

    async def _load(self, digest: str, now: float) -> _Entry:
        found = await self._store.key_by_hash(digest)
        if found is None or found[0].revoked_at is not None:
            entry = _Entry(None, now, None)
            if len(self._entries) >= MAX_NEGATIVE:
                self._entries.clear()
        else:
            key, project = found
            expires = (
                key.expires_at.replace(tzinfo=key.expires_at.tzinfo or UTC).timestamp()
                if key.expires_at
                else None
            )
            entry = _Entry(principal_from_records(key, project), now, expires)
        self._entries[digest] = entry
        return entry


def require_scope(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes:
        raise PermissionDenied(f"This API key lacks the '{scope}' scope.")


def require_model(principal: Principal, model_id: str, requested: str) -> None:
    allowed = principal.models
    if allowed is not None and model_id not in allowed and requested not in allowed:
        raise PermissionDenied(f"This API key is not allowed to use the model '{requested}'.", param="model")


def _invalid_message(token: str) -> str:
    shown = token[:7] + "..." if len(token) > 10 else "***"
    return f"Incorrect API key provided: {shown}. Check the key, or create one with `tollway keys create`."
