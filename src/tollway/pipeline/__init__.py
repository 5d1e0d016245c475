"""The request flow, in the order a call meets it. Read `Gateway.run` as the story of a request:

    auth (done by the surface, which knows where the key is) -> route -> limits + credits (admit)
    -> dispatch to the provider -> settle credits and limits, append the ledger row (meter)

Streams take the same path; their settlement happens when the stream ends, however it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from tollway.catalog import Catalog, CatalogModel
from tollway.catalog.tokens import TokenCounter
from tollway.errors import TollwayError
from tollway.metering import Meter
from tollway.observability import Metrics
from tollway.pipeline.auth import require_scope
from tollway.pipeline.call import Call
from tollway.pipeline.dispatch import Result, dispatch, dispatch_stream, provider_for
from tollway.pipeline.metering import Metering
from tollway.pipeline.routing import route
from tollway.pipeline.stream_usage import estimate_stream_usage, streamed_text
from tollway.pipeline.streams import MeteredStream
from tollway.providers.base import Provider
from tollway.types import JsonResult, ModelRequest, Usage

__all__ = ["Call", "Gateway", "MeteredStream"]


class Gateway:
    def __init__(
        self,
        catalog: Catalog,
        providers: Mapping[str, Provider],
        meter: Meter | None,
        tokens: TokenCounter,
        metrics: Metrics | None = None,
    ):
        self.catalog = catalog
        self.providers = dict(providers)
        self.metering = Metering(meter, metrics)
        self.tokens = tokens

    async def run(self, call: Call, request: ModelRequest) -> Result:
        model = self._prepare(call, request)
        await self.metering.admit(call, model, request)
        try:
            result = await dispatch(
                provider_for(self.providers, model.target()),
                call.operation,
                request,
                model.target(),
            )
        except TollwayError as exc:
            await self.metering.settle(call, Usage(), exc.http_status, exc.error_code)
            raise
        except BaseException:
            await self.metering.settle(call, Usage(), 499, "cancelled")
            raise
        call.mark_first_byte()
        await self.metering.settle(call, result.usage)
        return result

    async def run_json(self, call: Call, request: ModelRequest) -> JsonResult:
        result = await self.run(call, request)
        if not isinstance(result, JsonResult):
            raise TollwayError(f"{call.operation.value} returned {result.content_type}, not JSON.")
        return result

    async def run_stream(self, call: Call, request: ModelRequest) -> MeteredStream:
        model = self._prepare(call, request)
        call.streamed = True
        await self.metering.admit(call, model, request)
        try:
            inner = await dispatch_stream(
                provider_for(self.providers, model.target()), call.operation, request, model.target()
            )
        except TollwayError as exc:
            await self.metering.settle(call, Usage(), exc.http_status, exc.error_code)
            raise
        except BaseException:
            await self.metering.settle(call, Usage(), 499, "cancelled")
            raise

        async def settle(usage: Usage, status: int, error_code: str | None) -> None:
            await self.metering.settle(call, usage, status, error_code)

        async def count(blocks: list[bytes], completed: bool) -> Usage:
            if not completed:  # cut short: bill an estimate rather than load a vocabulary for it
                return estimate_stream_usage(request, blocks)
            # Exact counts need a vocabulary (a second to load, once): keep that off the event loop.
            return await asyncio.to_thread(self._count_stream_usage, request, model, blocks)

        return MeteredStream(inner, settle, call.mark_first_byte, count)

    def _prepare(self, call: Call, request: ModelRequest) -> CatalogModel:
        require_scope(call.principal, "models:use")
        return route(self.catalog, call, request.model)

    def _count_stream_usage(self, request: ModelRequest, model: CatalogModel, blocks: list[bytes]) -> Usage:
        """Usage of a stream whose upstream reported none: count prompt and streamed text ourselves."""
        text = streamed_text(blocks)
        messages = request.body.get("messages")
        prompt = (
            self.tokens.count_messages(messages, model.upstream_model)
            if isinstance(messages, list)
            else self.tokens.count_text(str(request.body.get("prompt") or ""), model.upstream_model)
        )
        return Usage(input_tokens=prompt, output_tokens=self.tokens.count_text(text, model.upstream_model))
