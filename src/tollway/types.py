"""Canonical types: what flows between the surfaces, the pipeline and the providers.

The canonical *chat* format is OpenAI's Chat Completions shape (requests, responses and stream chunks):
it is the lingua franca every client and most upstreams already speak, so the common case (an OpenAI
client calling an OpenAI-compatible upstream) needs no translation at all. Other surfaces (Anthropic
Messages, Responses) and providers (Anthropic) translate to and from it with pure functions in `formats/`.

Bodies are kept as parsed JSON (`dict`) *and*, where untouched, as the caller's original bytes, so a
pass-through call is forwarded without re-serialising.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import orjson

JSON = dict[str, Any]


class Operation(enum.StrEnum):
    """What a call asks a model to do; also the capability a model must have to serve it."""

    CHAT = "chat"
    COMPLETION = "completions"
    EMBEDDING = "embeddings"
    RERANK = "rerank"
    MODERATION = "moderation"
    TRANSCRIPTION = "transcription"
    TRANSLATION = "translation"
    SPEECH = "speech"
    IMAGE_GENERATION = "image_generation"
    UPSCALE = "upscale"


class Surface(enum.StrEnum):
    """The wire protocol a caller speaks; decides how errors and responses are rendered."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    NATIVE = "native"
    ADMIN = "admin"


@dataclass(slots=True)
class Usage:
    """Units a call consumed, in the provider-neutral vocabulary the ledger and pricing use."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    images: int = 0
    audio_seconds: float = 0.0
    characters: int = 0
    search_units: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def from_openai(cls, usage: JSON | None) -> Usage:
        """Reads an OpenAI `usage` object (chat, completions or embeddings)."""
        if not usage:
            return cls()
        details = usage.get("prompt_tokens_details") or {}
        return cls(  # positional (runs on every call): input, cached input, cache writes, output
            int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0),
            int(details.get("cached_tokens") or 0),
            0,
            int(usage.get("completion_tokens") or usage.get("output_tokens") or 0),
        )


@dataclass(slots=True, frozen=True)
class Limits:
    """Rate limits on a key or a project; None means unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    max_concurrency: int | None = None

    @property
    def any(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.max_concurrency is not None


@dataclass(slots=True, frozen=True)
class Principal:
    """Who is calling: an API key resolved to its project, scopes and limits."""

    key_id: str
    key_prefix: str
    project_id: str
    project_name: str
    scopes: frozenset[str]
    models: frozenset[str] | None = None  # allow-list; None allows every model
    expires_at: datetime | None = None
    key_limits: Limits = Limits()
    project_limits: Limits = Limits()
    spend_cap: Decimal | None = None
    credit_enforced: bool = False


@dataclass(slots=True, frozen=True)
class Pricing:
    """Dollar prices from the catalog. Token prices are per million tokens."""

    input_per_mtok: Decimal = Decimal(0)
    cached_input_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None
    output_per_mtok: Decimal = Decimal(0)
    per_request: Decimal = Decimal(0)
    per_image: Decimal = Decimal(0)
    per_audio_second: Decimal = Decimal(0)
    per_character: Decimal = Decimal(0)
    per_search_unit: Decimal = Decimal(0)


@dataclass(slots=True, frozen=True)
class Target:
    """One place a call can be served: a provider and the model name that provider knows it by."""

    model_id: str  # catalog id, `provider:model`
    provider: str
    upstream_model: str
    pricing: Pricing = Pricing()
    context_window: int | None = None


@dataclass(slots=True)
class ModelRequest:
    """A request to a model. `body` is the canonical JSON; `raw` the caller's bytes while untouched."""

    body: JSON
    raw: bytes | None = None
    files: dict[str, UploadedFile] = field(default_factory=dict)
    # The caller's own body when it speaks another wire format (e.g. "anthropic"): a provider that speaks
    # that format natively sends it as is instead of the canonical body, so nothing is lost in a round trip.
    native_format: str | None = None
    native_body: JSON | None = None
    # The caller's HTTP headers, for providers configured to forward some of them (`forward_headers`).
    client_headers: Mapping[str, str] | None = None

    @property
    def model(self) -> str:
        value = self.body.get("model")
        return value if isinstance(value, str) else ""

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    def with_body(self, **changes: Any) -> ModelRequest:
        """A copy whose body has `changes` applied; the raw bytes no longer match, so they are dropped."""
        return ModelRequest(
            body={**self.body, **changes},
            raw=None,
            files=self.files,
            native_format=self.native_format,
            native_body=self.native_body,
            client_headers=self.client_headers,
        )

    def wire_bytes(self) -> bytes:
        return self.raw if self.raw is not None else orjson.dumps(self.body)


@dataclass(slots=True, frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class JsonResult:
    """A JSON answer in the canonical shape of its operation, plus what it consumed."""

    usage: Usage
    data: JSON | None = None
    raw: bytes | None = None
    format: str = "openai"  # "anthropic" when a provider answered a native_body in its own format

    def json(self) -> JSON:
        if self.data is None:
            self.data = orjson.loads(self.raw or b"{}")
        return self.data

    def body(self) -> bytes:
        if self.raw is None:
            self.raw = orjson.dumps(self.data)
        return self.raw


@dataclass(slots=True)
class BinaryResult:
    """Bytes that are the answer itself (audio, images), with their media type."""

    content: bytes
    content_type: str
    usage: Usage


class ChatStream(Protocol):
    """A streamed chat or completion answer.

    Iterating yields blocks of OpenAI-framed SSE bytes (`data: {...}\\n\\n`, whole events only, without
    the final `data: [DONE]`). `usage` is set once the stream has reported it. Errors after the first
    block are raised from the iterator as `UpstreamError`. `complete` turns True once the last event is
    in hand, before the blocks made of it are yielded: whatever comes after that is the end of the answer.
    """

    usage: Usage | None
    format: str  # "openai" (canonical chunks) or a native format such as "anthropic"
    complete: bool

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class CallRecord:
    """Everything the ledger keeps about one call."""

    request_id: str
    surface: str
    operation: str
    started: float  # Unix time, in seconds, when the call arrived (a float: no datetime per call)
    project_id: str | None = None
    key_id: str | None = None
    model_requested: str | None = None
    model_served: str | None = None
    backend: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_units: int = 0  # 1e-10 dollars (`tollway.money`)
    latency_ms: float = 0.0
    ttfb_ms: float | None = None
    status: int = 200
    error_code: str | None = None
    streamed: bool = False
