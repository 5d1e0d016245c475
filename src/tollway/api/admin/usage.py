"""GET /admin/usage: the ledger, filtered, grouped, or exported as CSV / JSONL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tollway.api.admin.common import require_admin
from tollway.api.http import json_response, services
from tollway.errors import InvalidRequest
from tollway.metering.queries import rows_to_csv, rows_to_jsonl, usage_grouped, usage_rows

GROUPS = ("model", "key", "day")
FORMATS = ("json", "csv", "jsonl")
MAX_LIMIT = 10_000


async def list_usage(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    svc = services(request)
    query = request.query
    filters = await _filters(request)
    group_by = query.get("group_by")
    fmt = query.get("format", "json")
    if fmt not in FORMATS:
        raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}.", param="format")
    if svc.meter is not None:
        await svc.meter.flush()  # what was just served is in the answer
    async with svc.sessions() as session:
        if group_by is not None:
            if group_by not in GROUPS:
                raise InvalidRequest(f"group_by must be one of {', '.join(GROUPS)}.", param="group_by")
            rows = await usage_grouped(session, group_by=group_by, **filters)  # type: ignore[arg-type]
        else:
            rows = await usage_rows(
                session, limit=_int(query, "limit", 1000), offset=_int(query, "offset", 0), **filters
            )
    return _render(rows, fmt)


def _render(rows: list[dict[str, Any]], fmt: str) -> web.StreamResponse:
    if fmt == "csv":
        return web.Response(text=rows_to_csv(rows), content_type="text/csv", headers=_attachment("usage.csv"))
    if fmt == "jsonl":
        return web.Response(
            text=rows_to_jsonl(rows), content_type="application/x-ndjson", headers=_attachment("usage.jsonl")
        )
    return json_response({"object": "list", "data": rows})


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


async def _filters(request: web.Request) -> dict[str, Any]:
    query = request.query
    filters: dict[str, Any] = {"key_id": query.get("key"), "model": query.get("model")}
    if query.get("project"):
        filters["project_id"] = (await services(request).control.find_project(query["project"])).id
    filters["since"] = _time(query, "since")
    filters["until"] = _time(query, "until")
    return filters


def _time(query: Any, name: str) -> datetime | None:
    value = query.get(name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(
            f"{name} must be an ISO 8601 date or time, e.g. 2026-11-01T00:00:00Z.", param=name
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(query: Any, name: str, default: int) -> int:
    value = query.get(name)
    if value is None:
        return default
    if not value.isdigit() or int(value) > MAX_LIMIT:
        raise InvalidRequest(f"{name} must be an integer from 0 to {MAX_LIMIT}.", param=name)
    return int(value)
