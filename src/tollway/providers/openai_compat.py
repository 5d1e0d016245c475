"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, llama.cpp server, Groq, DeepSeek, ...).

The canonical format *is* this upstream's format, so requests go out as the caller's bytes whenever the
gateway did not have to change them, and answers come back as the upstream's bytes. The only work per
call is what metering needs: the `usage` object, read from the JSON answer or found in the stream.

Streams always ask the upstream for usage (`stream_options.include_usage`), because a stream without it
cannot be billed; when the caller did not ask for it, the usage chunk is removed before it reaches them.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from tollway.errors import UpstreamError
from tollway.providers.base import Provider, ProviderConfig
from tollway.providers.forwarding import forward_rules, forwarded
from tollway.providers.upstream_errors import TRANSPORT_ERRORS, error_from_status, transport_error
from tollway.providers.upstream_stream import UpstreamStream
from tollway.types import BinaryResult, ChatStream, JsonResult, ModelRequest, Target, Usage

_USAGE_MARKERS = (b'"usage":{', b'"usage": {')


class OpenAICompatProvider(Provider):
    type = "openai"

    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession):
        options = config.options
        self.name = config.name
        self._session = session
        self._base = str(options.get("base_url") or "https://api.openai.com/v1").rstrip("/")
        self._headers = {"Content-Type": "application/json", **dict(options.get("headers") or {})}
        if options.get("api_key"):
            self._headers["Authorization"] = f"Bearer {options['api_key']}"
        self._forward = forward_rules(options.get("forward_headers"))
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=float(options.get("connect_timeout") or 10.0),
            sock_read=float(options.get("timeout") or 600.0),
        )

    async def chat(self, request: ModelRequest, target: Target) -> JsonResult:
        return await self._post_json("/chat/completions", request, target)

    async def chat_stream(self, request: ModelRequest, target: Target) -> ChatStream:
        return await self._post_stream("/chat/completions", request, target)

    async def completion(self, request: ModelRequest, target: Target) -> JsonResult:
        return await self._post_json("/completions", request, target)

    async def completion_stream(self, request: ModelRequest, target: Target) -> ChatStream:
        return await self._post_stream("/completions", request, target)

    async def embeddings(self, request: ModelRequest, target: Target) -> JsonResult:
        return await self._post_json("/embeddings", request, target)

    async def moderation(self, request: ModelRequest, target: Target) -> JsonResult:
        return await self._post_json("/moderations", request, target)

    async def image_generation(self, request: ModelRequest, target: Target) -> JsonResult:
        result = await self._post_json("/images/generations", request, target)
        result.usage.images = len(result.json().get("data") or ())
        return result

    async def speech(self, request: ModelRequest, target: Target) -> BinaryResult:
        payload = self._outgoing(request, target)
        body, content_type = await self._post_raw("/audio/speech", payload, self._headers_for(request))
        characters = len(str(request.body.get("input") or ""))
        return BinaryResult(content=body, content_type=content_type, usage=Usage(characters=characters))

    async def transcription(self, request: ModelRequest, target: Target) -> JsonResult | BinaryResult:
        return await self._post_form("/audio/transcriptions", request, target)

    async def translation(self, request: ModelRequest, target: Target) -> JsonResult | BinaryResult:
        return await self._post_form("/audio/translations", request, target)

    async def list_models(self) -> list[dict[str, Any]]:
        try:
            async with self._session.get(
                self._base + "/models", headers=self._headers, timeout=self._timeout
            ) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise error_from_status(self.name, resp.status, body, resp.headers)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(self.name, exc) from exc
        data = orjson.loads(body).get("data")
        return data if isinstance(data, list) else []

    def _headers_for(self, request: ModelRequest) -> dict[str, str]:
        if not self._forward or not request.client_headers:
            return self._headers
        return {**forwarded(request.client_headers, self._forward), **self._headers}

    def _outgoing(self, request: ModelRequest, target: Target, **changes: Any) -> bytes:
        if request.body.get("model") != target.upstream_model:
            changes["model"] = target.upstream_model
        return (request.with_body(**changes) if changes else request).wire_bytes()

    async def _post_json(self, path: str, request: ModelRequest, target: Target) -> JsonResult:
        payload = self._outgoing(request, target)
        try:
            async with self._session.post(
                self._base + path, data=payload, headers=self._headers_for(request), timeout=self._timeout
            ) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise error_from_status(self.name, resp.status, body, resp.headers)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(self.name, exc) from exc
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"Backend '{self.name}' returned invalid JSON.", backend=self.name) from exc
        return JsonResult(Usage.from_openai(data.get("usage")), data, body)  # usage, data, raw

    async def _post_form(self, path: str, request: ModelRequest, target: Target) -> JsonResult | BinaryResult:
        """Multipart uploads (audio): the caller's fields with the upstream's model name, and the files."""
        form = aiohttp.FormData()
        for name, value in {**request.body, "model": target.upstream_model}.items():
            for item in value if isinstance(value, list) else [value]:
                form.add_field(f"{name}[]" if isinstance(value, list) else name, str(item))
        for name, upload in request.files.items():
            form.add_field(name, upload.data, filename=upload.filename, content_type=upload.content_type)
        headers = {k: v for k, v in self._headers_for(request).items() if k.lower() != "content-type"}
        body, content_type = await self._post_raw(path, form, headers)
        usage = Usage()
        if content_type.startswith("application/json"):
            data = orjson.loads(body)
            usage.audio_seconds = float((data.get("usage") or {}).get("seconds") or data.get("duration") or 0)
            return JsonResult(usage=usage, data=data, raw=body)
        return BinaryResult(content=body, content_type=content_type, usage=usage)

    async def _post_raw(self, path: str, payload: Any, headers: dict[str, str]) -> tuple[bytes, str]:
        try:
            async with self._session.post(
                self._base + path, data=payload, headers=headers, timeout=self._timeout
            ) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise error_from_status(self.name, resp.status, body, resp.headers)
                return body, resp.headers.get("Content-Type", "application/octet-stream")
        except TRANSPORT_ERRORS as exc:
            raise transport_error(self.name, exc) from exc

    async def _post_stream(self, path: str, request: ModelRequest, target: Target) -> ChatStream:
        options = request.body.get("stream_options")
        caller_wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        changes: dict[str, Any] = {}
        if not caller_wants_usage:
            changes["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
        payload = self._outgoing(request, target, **changes)
        try:
            resp = await self._session.post(
                self._base + path, data=payload, headers=self._headers_for(request), timeout=self._timeout
            )
        except TRANSPORT_ERRORS as exc:
            raise transport_error(self.name, exc) from exc
        if resp.status >= 400:
            try:
                body = await resp.read()
            except TRANSPORT_ERRORS as exc:
                raise transport_error(self.name, exc) from exc
            finally:
                resp.release()
            raise error_from_status(self.name, resp.status, body, resp.headers)
        return OpenAIStream(resp, self.name, strip_usage=not caller_wants_usage)


class OpenAIStream(UpstreamStream):
    """The upstream's SSE bytes, in whole events, with `usage` picked out on the way."""

    format = "openai"

    def __init__(self, response: aiohttp.ClientResponse, backend: str, *, strip_usage: bool):
        super().__init__(response, backend)
        self._strip_usage = strip_usage

    def _on_block(self, block: bytes) -> tuple[bytes, UpstreamError | None]:
        return self._inspect(block), None

    def _inspect(self, block: bytes) -> bytes:
        """Reads usage from the one event that carries it (found by a byte search, so the other events
        of the block are never parsed) and drops that event if the caller did not ask for usage."""
        found = _find_usage(block)
        if found < 0:
            return block
        previous = block.rfind(b"\n\n", 0, found)
        begin = 0 if previous < 0 else previous + 2
        end = block.find(b"\n\n", found)
        end = len(block) if end < 0 else end + 2
        event = block[begin:end]
        payload = event[event.find(b"data:") + 5 :].strip()
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return block
        usage = chunk.get("usage") if isinstance(chunk, dict) else None
        if not usage:
            return block
        self.usage = Usage.from_openai(usage)
        if self._strip_usage and not chunk.get("choices"):
            return block[:begin] + block[end:]
        return block


def _find_usage(block: bytes) -> int:
    for marker in _USAGE_MARKERS:
        found = block.find(marker)
        if found >= 0:
            return found
    return -1
