"""/admin/keys: create (the key is shown once), list, show, change, revoke."""

from __future__ import annotations

from aiohttp import web

from tollway.api.admin.bodies import KeyCreate, KeyPatch
from tollway.api.admin.common import key_view, require_admin
from tollway.api.http import json_response, parse_model, read_json_object, services
from tollway.store.control import KeySpec, LimitValues


async def create_key(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    spec = parse_model(KeyCreate, (await read_json_object(request))[0])
    record, key = await services(request).control.create_key(
        KeySpec(
            project=spec.project,
            name=spec.name,
            scopes=tuple(spec.scopes),
            models=tuple(spec.models) if spec.models else None,
            expires_at=spec.expires_at,
            limits=LimitValues(spec.rpm, spec.tpm, spec.max_concurrency),
            spend_cap=spec.spend_cap,
        )
    )
    return json_response({**key_view(record), "key": key}, status=201)


async def list_keys(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    rows = await services(request).control.list_keys(request.query.get("project"))
    return json_response({"object": "list", "data": [key_view(key, project) for key, project in rows]})


async def get_key(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    return json_response(key_view(await services(request).control.get_key(request.match_info["key_id"])))


async def patch_key(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    svc = services(request)
    patch = parse_model(KeyPatch, (await read_json_object(request))[0])
    changes = patch.model_dump(exclude_unset=True)
    if "models" in changes:
        changes["models"] = " ".join(changes["models"]) if changes["models"] else None
    record = await svc.control.update_key(request.match_info["key_id"], changes)
    await svc.control_changed()
    return json_response(key_view(record))


async def revoke_key(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    svc = services(request)
    record = await svc.control.revoke_key(request.match_info["key_id"])
    await svc.control_changed()
    return json_response({**key_view(record), "deleted": True})
