"""Calling the provider that serves a call: operation -> provider method, in one table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tollway.errors import InvalidRequest, UpstreamUnavailable
from tollway.providers.base import Provider
from tollway.types import BinaryResult, ChatStream, JsonResult, ModelRequest, Operation, Target

Result = JsonResult | BinaryResult

_UNARY: dict[Operation, Callable[[Provider], Callable[[ModelRequest, Target], Awaitable[Any]]]] = {
    Operation.CHAT: lambda p: p.chat,
    Operation.COMPLETION: lambda p: p.completion,
    Operation.EMBEDDING: lambda p: p.embeddings,
    Operation.RERANK: lambda p: p.rerank,
    Operation.MODERATION: lambda p: p.moderation,
    Operation.TRANSCRIPTION: lambda p: p.transcription,
    Operation.TRANSLATION: lambda p: p.translation,
    Operation.IMAGE_GENERATION: lambda p: p.image_generation,
    Operation.SPEECH: lambda p: p.speech,
    Operation.UPSCALE: lambda p: p.upscale,
}

_STREAMING: dict[Operation, Callable[[Provider], Callable[[ModelRequest, Target], Awaitable[ChatStream]]]] = {
    Operation.CHAT: lambda p: p.chat_stream,
    Operation.COMPLETION: lambda p: p.completion_stream,
}


def provider_for(providers: dict[str, Provider], target: Target) -> Provider:
    provider = providers.get(target.provider)
    if provider is None:
        raise UpstreamUnavailable(
            f"Backend '{target.provider}' is not available in this gateway.", backend=target.provider
        )
    return provider


async def dispatch(provider: Provider, operation: Operation, request: ModelRequest, target: Target) -> Result:
    method = _UNARY.get(operation)
    if method is None:
        raise InvalidRequest(f"{operation.value} is not supported here.")
    result: Result = await method(provider)(request, target)
    return result


async def dispatch_stream(
    provider: Provider, operation: Operation, request: ModelRequest, target: Target
) -> ChatStream:
    method = _STREAMING.get(operation)
    if method is None:
        raise InvalidRequest(f"Streaming is not supported for {operation.value}.", param="stream")
    return await method(provider)(request, target)
