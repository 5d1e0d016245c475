"""The provider seam: one small base class every upstream (and the local models) implements.

A provider receives canonical requests (`ModelRequest`, OpenAI-shaped bodies) and a `Target` naming the
upstream model, makes the call, and returns canonical results. It owns its wire translation and maps
its upstream's failures onto the error tree (`UpstreamStatus`, `UpstreamUnavailable`, `UpstreamTimeout`),
always naming itself as the backend. It never sees HTTP requests from callers, keys or policy.

Operations a provider does not offer raise `InvalidRequest` naming the operation, so a capability
missing from a provider is a clear 400, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tollway.errors import InvalidRequest
from tollway.types import BinaryResult, ChatStream, JsonResult, ModelRequest, Operation, Target


@dataclass(slots=True, frozen=True)
class ProviderConfig:
    """A provider as configured: its name, type and type-specific options (base_url, api_key, ...)."""

    name: str
    type: str
    options: dict[str, Any] = field(default_factory=dict)


class Provider:
    """Base class: override the operations the upstream offers."""

    name: str = "provider"
    type: str = "base"

    async def start(self) -> None:
        """Open connections or pools. Called once in the app's lifespan."""

    async def aclose(self) -> None:
        """Release connections. Called once at shutdown."""

    def _unsupported(self, op: Operation) -> InvalidRequest:
        return InvalidRequest(f"Provider '{self.name}' ({self.type}) does not support {op.value}.")

    async def chat(self, request: ModelRequest, target: Target) -> JsonResult:
        raise self._unsupported(Operation.CHAT)

    async def chat_stream(self, request: ModelRequest, target: Target) -> ChatStream:
        raise self._unsupported(Operation.CHAT)

    async def completion(self, request: ModelRequest, target: Target) -> JsonResult:
        raise self._unsupported(Operation.COMPLETION)

    async def completion_stream(self, request: ModelRequest, target: Target) -> ChatStream:
        raise self._unsupported(Operation.COMPLETION)

    async def embeddings(self, request: ModelRequest, target: Target) -> JsonResult:
        raise self._unsupported(Operation.EMBEDDING)

    async def rerank(self, request: ModelRequest, target: Target) -> JsonResult:
        raise self._unsupported(Operation.RERANK)

    async def moderation(self, request: ModelRequest, target: Target) -> JsonResult:
        raise self._unsupported(Operation.MODERATION)

    async def transcription(self, request: ModelRequest, target: Target) -> JsonResult | BinaryResult:
        raise self._unsupported(Operation.TRANSCRIPTION)

    async def translation(self, request: ModelRequest, target: Target) -> JsonResult | BinaryResult:
        raise self._unsupported(Operation.TRANSLATION)

    async def image_generation(self, request: ModelRequest, target: Target) -> JsonResult:
        raise self._unsupported(Operation.IMAGE_GENERATION)

    async def speech(self, request: ModelRequest, target: Target) -> BinaryResult:
        raise self._unsupported(Operation.SPEECH)

    async def upscale(self, request: ModelRequest, target: Target) -> BinaryResult:
        raise self._unsupported(Operation.UPSCALE)

    async def list_models(self) -> list[dict[str, Any]]:
        """Models the upstream itself reports (optional; used by `tollway models --remote`)."""
        return []
