"""The native envelope: `{"status": "ok", "data": ..., "meta": {"request_id": ...}}`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tollway.api.http import json_response, request_id


def ok(
    request: web.Request, data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response(
        {"status": "ok", "data": data, "meta": {"request_id": request_id(request)}},
        status=status,
        headers=headers,
    )
