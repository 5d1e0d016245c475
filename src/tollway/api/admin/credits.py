"""POST /admin/projects/{project}/credits: top up or adjust a project's balance."""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web
from pydantic import Field

from tollway.api.admin.bodies import Strict
from tollway.api.admin.common import money, require_admin
from tollway.api.http import json_response, parse_model, read_json_object, services
from tollway.services import Services
from tollway.store.models import Project


class CreditBody(Strict):
    amount: Decimal = Field(description="Dollars; negative for an adjustment down.")
    note: str | None = Field(default=None, max_length=500)


async def project_balance(svc: Services, project: Project) -> Decimal:
    """The live balance when metering runs (it includes in-flight reservations), else the durable one."""
    if svc.meter is not None:
        return await svc.meter.balance(project.id)
    return project.credited - project.spent


async def add_credits(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    svc = services(request)
    body = parse_model(CreditBody, (await read_json_object(request))[0])
    project = await svc.control.find_project(request.match_info["project"])
    if svc.meter is not None:
        balance = await svc.meter.grant(project.id, body.amount, body.note)
    else:
        from tollway.metering.ledger import add_credit

        await add_credit(svc.sessions, project.id, body.amount, body.note)
        balance = await project_balance(svc, await svc.control.find_project(project.id))
    return json_response(
        {
            "project_id": project.id,
            "amount": money(body.amount),
            "note": body.note,
            "balance": money(balance),
        },
        status=201,
    )
