"""Anthropic's Messages API as a provider.

Canonical (OpenAI-shaped) requests are translated with `formats.anthropic` and answered in the canonical
shape; a request that arrived in Anthropic's own format (`native_format == "anthropic"`) is sent as the
caller wrote it (only `model` replaced) and answered untranslated, so nothing is lost in a round trip.
Either way the usage is read from the answer for metering.

Failures: transport errors become `UpstreamUnavailable` / `UpstreamTimeout`; Anthropic's error bodies
become `UpstreamStatus` with Anthropic's error type kept (529 overloaded is reported as 503, and 429 keeps
its retry-after). An `event: error` in the middle of a stream is raised from the stream's iterator.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson

from tollway.errors import UpstreamError
from tollway.formats.anthropic import DEFAULT_MAX_TOKENS, chat_to_messages
from tollway.formats.anthropic_response import (
    message_to_chat_completion,
    upstream_error,
    usage_from_anthropic,
)
from tollway.formats.anthropic_stream import USAGE_FIELDS, AnthropicToChatChunks, chunk_bytes
from tollway.providers.base import Provider, ProviderConfig
from tollway.providers.forwarding import forward_rules, forwarded
from tollway.providers.upstream_errors import TRANSPORT_ERRORS, transport_error
from tollway.providers.upstream_stream import UpstreamStream
from tollway.types import ChatStream, JsonResult, ModelRequest, Target

JSON = dict[str, Any]
PASSED_HEADERS = ("retry-after", "retry-after-ms")


class AnthropicProvider(Provider):
    type = "anthropic"

    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession):
        options = config.options
        self.name = config.name
        self._session = session
        self._base = str(options.get("base_url") or "https://api.anthropic.com").rstrip("/")
        self._default_max_tokens = int(options.get("default_max_tokens") or DEFAULT_MAX_TOKENS)
        self._headers = {
            "content-type": "application/json",
            "anthropic-version": str(options.get("anthropic_version") or "2023-06-01"),
            **dict(options.get("headers") or {}),
        }
        if options.get("api_key"):
            self._headers["x-api-key"] = str(options["api_key"])
        self._forward = forward_rules(options.get("forward_headers"))
        timeout = float(options.get("timeout") or 600.0)
        connect = float(options.get("connect_timeout") or min(timeout, 10.0))
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect)
        # A stream may run long; what must not run long is the silence between two of its events.
        self._stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=timeout)

    # --- operations -------------------------------------------------------------------------------

    async def chat(self, request: ModelRequest, target: Target) -> JsonResult:
        native = request.native_format == "anthropic"
        body = self._outgoing(request, target, stream=False)
        raw = await self._post_json("/v1/messages", body, self._headers_for(request))
        message = _loads(raw, self.name)
        usage = usage_from_anthropic(message.get("usage"))
        if native:
            return JsonResult(usage=usage, data=message, raw=raw, format="anthropic")
        model = str(message.get("model") or target.upstream_model)
        return JsonResult(usage=usage, data=message_to_chat_completion(message, model))

    async def chat_stream(self, request: ModelRequest, target: Target) -> ChatStream:
        body = self._outgoing(request, target, stream=True)
        response = await self._open_stream("/v1/messages", body, self._headers_for(request))
        if request.native_format == "anthropic":
            return AnthropicNativeStream(response, self.name)
        options = request.body.get("stream_options")
        wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        return AnthropicChatStream(response, self.name, target.upstream_model, include_usage=wants_usage)

    async def count_tokens(self, native_body: JSON, target: Target | None = None) -> JSON:
        """Anthropic's `/v1/messages/count_tokens` for a native body: `{"input_tokens": N}`."""
        body = {**native_body, "model": target.upstream_model} if target else native_body
        return _loads(await self._post_json("/v1/messages/count_tokens", body, self._headers), self.name)

    # --- wire ---------------------------------------------------------------------------------------

    def _outgoing(self, request: ModelRequest, target: Target, *, stream: bool) -> JSON:
        if request.native_format == "anthropic" and request.native_body is not None:
            body = {**request.native_body, "model": target.upstream_model}
        else:
            body = chat_to_messages(request.body, default_max_tokens=self._default_max_tokens)
            body["model"] = target.upstream_model
        if stream:
            body["stream"] = True
        else:
            body.pop("stream", None)
        return body

    def _headers_for(self, request: ModelRequest) -> dict[str, str]:
        if not self._forward or not request.client_headers:
            return self._headers
        return {**forwarded(request.client_headers, self._forward), **self._headers}

    async def _post_json(self, path: str, body: JSON, headers: dict[str, str]) -> bytes:
        try:
            async with self._session.post(
                self._base + path, data=orjson.dumps(body), headers=headers, timeout=self._timeout
            ) as response:
                raw = await response.read()
                if response.status >= 400:
                    raise self._status_error(response, raw)
                return raw
        except TRANSPORT_ERRORS as exc:
            raise transport_error(self.name, exc) from exc

    async def _open_stream(self, path: str, body: JSON, headers: dict[str, str]) -> aiohttp.ClientResponse:
        try:
            response = await self._session.post(
                self._base + path,
                data=orjson.dumps(body),
                headers=headers,
                timeout=self._stream_timeout,
            )
        except TRANSPORT_ERRORS as exc:
            raise transport_error(self.name, exc) from exc
        if response.status < 400:
            return response
        try:
            raw = await response.read()
        except TRANSPORT_ERRORS as exc:
            raise transport_error(self.name, exc) from exc
        finally:
            response.release()
        raise self._status_error(response, raw)

    def _status_error(self, response: aiohttp.ClientResponse, raw: bytes) -> UpstreamError:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = {"error": {"type": None, "message": raw[:300].decode("utf-8", "replace")}}
        headers = {name: response.headers[name] for name in PASSED_HEADERS if name in response.headers}
        return upstream_error(response.status, body, backend=self.name, headers=headers)


def _loads(raw: bytes, backend: str) -> JSON:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(f"Backend '{backend}' returned invalid JSON.", backend=backend) from exc
    if not isinstance(data, dict):
        raise UpstreamError(f"Backend '{backend}' returned JSON that is not an object.", backend=backend)
    return data


def iter_sse(block: bytes) -> Iterator[tuple[bytes, str, JSON]]:
    """(whole event bytes, event name, parsed data) for each event in a block of whole events."""
    for event in block.split(b"\n\n"):
        if not event.strip():
            continue
        name, data = "", b""
        for line in event.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data += line[5:].strip()
        parsed = orjson.loads(data) if data else {}
        yield event + b"\n\n", name or str(parsed.get("type") or ""), parsed


class _AnthropicEvents(UpstreamStream):
    """Reads an Anthropic SSE response event by event; subclasses decide what each event becomes."""

    format = "anthropic"

    def _on_block(self, block: bytes) -> tuple[bytes, UpstreamError | None]:
        return self._translate_block(block)

    def _translate_block(self, block: bytes) -> tuple[bytes, UpstreamError | None]:
        """Translated events, and the error among them if any: what came before it still goes out."""
        out: list[bytes] = []
        for raw, name, event in iter_sse(block):
            try:
                out.append(self._translate(raw, name, event))
            except UpstreamError as exc:
                return b"".join(out), exc
        return b"".join(out), None

    def _translate(self, raw: bytes, name: str, event: JSON) -> bytes:
        raise NotImplementedError


class AnthropicNativeStream(_AnthropicEvents):
    """The upstream's Anthropic events passed on as they are; usage is read on the way."""

    def __init__(self, response: aiohttp.ClientResponse, backend: str):
        super().__init__(response, backend)
        self._usage: JSON = {}

    def _translate(self, raw: bytes, name: str, event: JSON) -> bytes:
        if name == "error":
            raise upstream_error(0, event, backend=self._backend)
        usage = (event.get("message") or {}).get("usage") if name == "message_start" else event.get("usage")
        if name in ("message_start", "message_delta") and isinstance(usage, dict):
            self._usage.update({key: usage[key] for key in USAGE_FIELDS if usage.get(key) is not None})
            self.usage = usage_from_anthropic(self._usage)
        if name == "message_stop":
            self.complete = True
        return raw


class AnthropicChatStream(_AnthropicEvents):
    """Anthropic events translated to OpenAI chat.completion.chunk events (canonical format)."""

    format = "openai"

    def __init__(self, response: aiohttp.ClientResponse, backend: str, model: str, *, include_usage: bool):
        super().__init__(response, backend)
        self._translator = AnthropicToChatChunks(model, backend=backend)
        self._include_usage = include_usage

    def _translate(self, raw: bytes, name: str, event: JSON) -> bytes:
        chunks = self._translator.feed(name, event)
        if name in ("message_start", "message_delta", "message_stop"):
            self.usage = self._translator.usage
        if self._translator.finished:
            self.complete = True
            if not self._include_usage:
                chunks = [chunk for chunk in chunks if chunk.get("choices")]
        return b"".join(chunk_bytes(chunk) for chunk in chunks)
