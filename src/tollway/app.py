"""create_app(settings) -> the aiohttp application. Services are built in its lifespan, not at import."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from tollway.api.http import SERVICES
from tollway.api.middleware import request_middleware
from tollway.api.routes import add_routes
from tollway.services import build_services
from tollway.settings import Settings


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[request_middleware], client_max_size=settings.max_body_bytes)

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        services = await build_services(settings)
        app[SERVICES] = services
        yield
        await services.aclose()

    app.cleanup_ctx.append(lifespan)
    add_routes(app)
    return app
