"""Cost tools: POST /infra/ai/tokens/count, /infra/ai/cost/estimate, /infra/ai/cost/compare (and /v1/ai/*)."""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from tollway.api.http import authenticate, parse_model, read_json_object, services
from tollway.api.native.envelope import ok
from tollway.catalog.estimate import Prompt, count_prompt_tokens, estimate
from tollway.errors import InvalidRequest
from tollway.pipeline.auth import require_model, require_scope
from tollway.types import JSON, Operation, Principal

MAX_COMPARE = 20


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: str | list[JSON] | None = None
    text: str | None = None
    tools: list[JSON] | None = None
    cache_strategy: str | None = None
    batch_mode: bool | None = None

    def prompt(self) -> Prompt:
        if self.messages is None and self.text is None:
            raise InvalidRequest("Send 'messages' (a string or message array) or 'text'.", param="messages")
        return Prompt.parse(self.messages if self.messages is not None else self.text, self.tools)


class CountBody(_Common):
    model: str


class EstimateBody(_Common):
    model: str
    expected_output_tokens: int = Field(default=0, ge=0)


class CompareBody(_Common):
    models: list[str] = Field(min_length=1, max_length=MAX_COMPARE)
    expected_output_tokens: int = Field(default=0, ge=0)


async def _principal(request: web.Request) -> Principal:
    principal = await authenticate(request)
    require_scope(principal, "models:use")
    return principal


async def count_tokens(request: web.Request) -> web.StreamResponse:
    principal = await _principal(request)
    body = parse_model(CountBody, (await read_json_object(request))[0])
    svc = services(request)
    model = svc.catalog.resolve(body.model, Operation.CHAT)
    require_model(principal, model.id, body.model)
    return ok(
        request, {"model": model.id, "prompt_tokens": count_prompt_tokens(svc.tokens, body.prompt(), model)}
    )


async def estimate_cost(request: web.Request) -> web.StreamResponse:
    principal = await _principal(request)
    body = parse_model(EstimateBody, (await read_json_object(request))[0])
    svc = services(request)
    result = estimate(svc.tokens, svc.catalog, body.prompt(), body.model, body.expected_output_tokens)
    require_model(principal, result["model"], body.model)
    return ok(request, result)


async def compare_cost(request: web.Request) -> web.StreamResponse:
    principal = await _principal(request)
    body = parse_model(CompareBody, (await read_json_object(request))[0])
    svc = services(request)
    prompt = body.prompt()
    estimates = []
    for name in body.models:
        result = estimate(svc.tokens, svc.catalog, prompt, name, body.expected_output_tokens)
        require_model(principal, result["model"], name)
        estimates.append(result)
    estimates.sort(key=lambda item: Decimal(item["total_cost"]))
    return ok(request, {"estimates": estimates, "cheapest": estimates[0]["model"]})
