"""GET /v1/models and GET /v1/models/{id}: OpenAI's shape, plus capabilities and pricing as extra fields
(the SDK keeps unknown fields on its Model objects)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from tollway.api.http import authenticate, json_response, services
from tollway.catalog import CatalogModel
from tollway.errors import ModelNotFound
from tollway.pipeline.auth import require_scope
from tollway.types import Pricing, Principal

CREATED = 1_735_689_600  # catalog entries have no creation time; a fixed one keeps answers stable


def model_object(model: CatalogModel) -> dict[str, Any]:
    return {
        "id": model.id,
        "object": "model",
        "created": CREATED,
        "owned_by": model.provider,
        "aliases": list(model.aliases),
        "capabilities": sorted(model.capabilities),
        "context_window": model.context_window,
        "max_output_tokens": model.max_output_tokens,
        "pricing": pricing_object(model.pricing),
        "description": model.description,
    }


def pricing_object(pricing: Pricing) -> dict[str, str]:
    """Non-zero prices as decimal strings (JSON numbers would lose exactness)."""
    values = {name: getattr(pricing, name) for name in pricing.__dataclass_fields__}
    return {name: _plain(value) for name, value in values.items() if value}


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _visible(principal: Principal, model: CatalogModel) -> bool:
    allowed = principal.models
    return allowed is None or model.id in allowed or any(alias in allowed for alias in model.aliases)


async def list_models(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    require_scope(principal, "models:use")
    models = [model_object(m) for m in services(request).catalog.listed() if _visible(principal, m)]
    return json_response({"object": "list", "data": models})


async def get_model(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    require_scope(principal, "models:use")
    name = request.match_info["model"]
    model = services(request).catalog.lookup(name)
    if not model.listed or not _visible(principal, model):
        raise ModelNotFound(
            f"The model '{name}' does not exist or is not configured. "
            "List the available models with GET /v1/models.",
            param="model",
        )
    return json_response(model_object(model))
