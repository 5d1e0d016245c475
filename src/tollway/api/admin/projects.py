"""/admin/projects: create, list, show, change."""

from __future__ import annotations

from aiohttp import web

from tollway.api.admin.bodies import ProjectCreate, ProjectPatch
from tollway.api.admin.common import money, project_view, require_admin
from tollway.api.admin.credits import project_balance
from tollway.api.http import json_response, parse_model, read_json_object, services
from tollway.store.control import LimitValues


async def create_project(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    spec = parse_model(ProjectCreate, (await read_json_object(request))[0])
    limits = LimitValues(spec.rpm, spec.tpm, spec.max_concurrency)
    project = await services(request).control.create_project(
        spec.name, credit_enforced=spec.credit_enforced, limits=limits
    )
    return json_response(project_view(project), status=201)


async def list_projects(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    projects = await services(request).control.list_projects()
    return json_response({"object": "list", "data": [project_view(p) for p in projects]})


async def get_project(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    svc = services(request)
    project = await svc.control.find_project(request.match_info["project"])
    balance = await project_balance(svc, project)
    return json_response({**project_view(project), "balance": money(balance), "spent": money(project.spent)})


async def patch_project(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    svc = services(request)
    patch = parse_model(ProjectPatch, (await read_json_object(request))[0])
    project = await svc.control.update_project(
        request.match_info["project"], patch.model_dump(exclude_unset=True)
    )
    await svc.control_changed()
    return json_response(project_view(project))
