"""GET /health (database and Redis status), GET /ready (accepting traffic), GET /metrics (Prometheus)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from tollway import __version__
from tollway.api.http import json_response, services


async def health(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    checks = {"database": await _check_database(request)}
    if svc.redis is not None:
        checks["redis"] = await _check_redis(request)
    healthy = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if healthy else "degraded", "version": __version__, "checks": checks}
    return json_response(body, status=200 if healthy else 503)


async def ready(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    if svc.closing:
        return json_response({"status": "shutting_down"}, status=503)
    return json_response({"status": "ready"})


async def _check_database(request: web.Request) -> str:
    try:
        async with asyncio.timeout(2.0), services(request).engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


async def _check_redis(request: web.Request) -> str:
    redis = services(request).redis
    try:
        async with asyncio.timeout(2.0):
            await redis.ping()  # type: ignore[union-attr]
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


async def metrics(request: web.Request) -> web.StreamResponse:
    body = generate_latest(services(request).metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
