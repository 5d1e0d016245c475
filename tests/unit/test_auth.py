from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tollway.errors import AuthenticationFailed, InvalidRequest, PermissionDenied
from tollway.pipeline.auth import KeyAuthenticator, require_model, require_scope
from tollway.store.control import ControlStore, KeySpec, hash_key
from tollway.store.db import create_engine, session_factory, upgrade


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ControlStore]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 't.db'}")
    await upgrade(engine)
    yield ControlStore(session_factory(engine))
    await engine.dispose()  # its connections' threads must not outlive the test's event loop


async def test_key_is_stored_hashed_and_resolves(store: ControlStore) -> None:
    await store.create_project("p")
    record, key = await store.create_key(KeySpec(project="p", models=("m1",)))
    assert key.startswith("tw-") and record.key_hash == hash_key(key) and key not in record.key_hash
    auth = KeyAuthenticator(store, admin_key="adm")
    principal = await auth.authenticate(key)
    assert principal.project_name == "p" and principal.scopes == {"models:use"}
    require_scope(principal, "models:use")
    with pytest.raises(PermissionDenied):
        require_scope(principal, "admin")
    with pytest.raises(PermissionDenied):
        require_model(principal, "m2", "m2")


async def test_revocation_after_invalidate_and_cache(store: ControlStore) -> None:
    await store.create_project("p")
    record, key = await store.create_key(KeySpec(project="p"))
    auth = KeyAuthenticator(store, admin_key=None)
    await auth.authenticate(key)
    await store.revoke_key(record.id)
    await auth.authenticate(key)  # still cached: no database read per request
    auth.invalidate()
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(key)


async def test_expiry_and_bad_keys(store: ControlStore) -> None:
    await store.create_project("p")
    _, key = await store.create_key(
        KeySpec(project="p", expires_at=datetime.now(UTC) + timedelta(seconds=60))
    )
    clock = [datetime.now(UTC).timestamp()]
    auth = KeyAuthenticator(store, admin_key="adm", wall_clock=lambda: clock[0])
    await auth.authenticate(key)
    clock[0] += 120
    with pytest.raises(AuthenticationFailed, match="expired"):
        await auth.authenticate(key)
    with pytest.raises(AuthenticationFailed, match="Missing"):
        await auth.authenticate(None)
    with pytest.raises(AuthenticationFailed, match="Incorrect"):
        await auth.authenticate("tw-unknown-key")
    assert (await auth.authenticate("adm")).scopes == {"admin"}


async def test_invalid_specs(store: ControlStore) -> None:
    await store.create_project("p")
    with pytest.raises(InvalidRequest, match="scope"):
        await store.create_key(KeySpec(project="p", scopes=("superuser",)))
    with pytest.raises(InvalidRequest, match="future"):
        await store.create_key(KeySpec(project="p", expires_at=datetime.now(UTC) - timedelta(days=1)))
