"""A strict loopback OpenAI API: the aiohttp app, its routes, and the request lifecycle they share.

Every ``/v1`` request goes through :meth:`OpenAISim._serve`: record -> injected latency / hang / failure
-> authentication -> JSON body -> endpoint handler. Endpoint handlers validate with the parameter tables
in :mod:`openai_validate` and render with :mod:`openai_chat`, :mod:`openai_legacy` and
:mod:`openai_embeddings`; body parsing, JSON/SSE framing and model kinds are in :mod:`openai_http`.
``/_sim/*`` routes are the test introspection surface (not OpenAI's).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web

from tollway.simulators import openai_errors as err
from tollway.simulators import openai_validate as v
from tollway.simulators.openai_audio import (
    speech_response,
    transcription_response,
    validate_speech,
    validate_transcription,
)
from tollway.simulators.openai_chat import chat_events, chat_response, plan_chat
from tollway.simulators.openai_control import (
    Controls,
    RequestRecorder,
    SimOptions,
    SimStats,
    read_controls,
)
from tollway.simulators.openai_embeddings import embeddings_response
from tollway.simulators.openai_http import (
    Body,
    client_gone,
    error_response,
    json_response,
    model_kind,
    model_object,
    parse_body,
    sse_frame,
)
from tollway.simulators.openai_images import images_response, validate_images
from tollway.simulators.openai_legacy import completion_events, completion_response, plan_completion

Handler = Callable[[web.Request, Body, Controls], Awaitable[web.StreamResponse]]

_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_DONE = b"data: [DONE]\n\n"
_DISCONNECT_SEEN = web.RequestKey("sim_disconnect_seen", bool)
_FILES = web.RequestKey("sim_files", dict)
_REQUEST_ID = web.RequestKey("sim_request_id", str)
_NOT_CHAT = (
    "This is not a chat model and thus not supported in the v1/chat/completions endpoint. "
    "Did you mean to use v1/completions?"
)
_NOT_LEGACY = (
    "This is a chat model and not supported in the v1/completions endpoint. "
    "Did you mean to use v1/chat/completions?"
)


class OpenAISim:
    """State of one simulator instance: options, counters, recorded requests, id sequence."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.stats = SimStats()
        self.recorder = RequestRecorder(options.record_limit)
        self._defaults = Controls(
            latency_ms=options.latency_ms,
            chunk_delay_ms=options.chunk_delay_ms,
            stream_chunks=options.stream_chunks,
        )
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(4)
        self._models = set(options.models)
        self._fail_counts: dict[str, int] = {}
        self._closing = False

    # ---- lifecycle shared by every /v1 route ------------------------------------------------------

    def endpoint(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def run(request: web.Request) -> web.StreamResponse:
            stats = self.stats
            stats.requests_total += 1
            stats.active_requests += 1
            route = request.match_info.route.resource
            path = route.canonical if route is not None else request.path  # bounded: one key per route
            stats.requests_by_path[path] = stats.requests_by_path.get(path, 0) + 1
            # Like OpenAI's x-request-id: lets a gateway test check that the upstream id is logged.
            request[_REQUEST_ID] = request_id = f"req_{self._id_prefix}{next(self._ids):024x}"
            try:
                response = await self._serve(request, handler)
            except err.SimError as exc:
                stats.error_responses += 1
                response = error_response(exc)
            except asyncio.CancelledError:
                if not self._closing:  # cancelled by a vanished client, not by our own shutdown
                    self.observe_disconnect(request)
                raise
            finally:
                stats.active_requests -= 1
            if not response.prepared:
                response.headers["x-request-id"] = request_id
            return response

        return run

    async def _serve(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body: Body = {}
        parse_error: err.SimError | None = None
        if request.content_type.startswith("multipart/"):  # audio uploads: fields, and files kept aside
            form = await request.post()
            body = {k: v for k, v in form.items() if isinstance(v, str)}
            request[_FILES] = {k: v for k, v in form.items() if isinstance(v, web.FileField)}
            raw = b""
        else:
            raw = await request.read() if request.can_read_body else b""
        if request.method == "POST" and raw:
            # aiohttp reports a missing Content-Type as octet-stream; OpenAI tolerates a missing one.
            declared = request.content_type if "Content-Type" in request.headers else ""
            body, parse_error = parse_body(raw, declared)
        if self.options.record:
            self.recorder.add(request.method, request.path, request.query_string, request.headers, body)
        controls = read_controls(request.headers, self.options, self._defaults)
        if controls.latency_ms > 0:
            await asyncio.sleep(controls.latency_ms / 1000)
            if client_gone(request):  # gave up while we "thought": a gateway should cancel upstream
                self.observe_disconnect(request)
                return web.Response(status=499)
        if controls.hang:
            return await self._hang(request)
        if controls.fail_status is not None and self._fails_now(controls):
            self.stats.errors_injected += 1
            raise err.injected(controls.fail_status, controls.retry_after_s)
        self._authenticate(request)
        if parse_error is not None:
            raise parse_error
        return await handler(request, body, controls)

    def _fails_now(self, controls: Controls) -> bool:
        """With ``x-sim-fail-times``, only the first N requests of a key fail: retries then succeed."""
        if controls.fail_times is None:
            return True
        used = self._fail_counts.get(controls.fail_key, 0)
        if used >= controls.fail_times:
            return False
        self._fail_counts[controls.fail_key] = used + 1
        return True

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise err.no_api_key()
        if self.options.api_key is not None and key.strip() != self.options.api_key:
            raise err.wrong_api_key(key.strip())

    async def _hang(self, request: web.Request) -> web.StreamResponse:
        # Polls: with aiohttp's default (no handler cancellation) nothing signals a vanished client.
        self.stats.hangs_started += 1
        while not client_gone(request) and not self._closing:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if self._closing and request.transport is not None:
            request.transport.abort()  # the server is stopping: drop the client as a dying upstream would
        else:
            self.observe_disconnect(request)
        return web.Response(status=499)

    async def on_shutdown(self, app: web.Application) -> None:
        # Releases hung requests; otherwise the server would wait on them when it is stopped.
        self._closing = True

    def observe_disconnect(self, request: web.Request) -> None:
        if not request.get(_DISCONNECT_SEEN):
            request[_DISCONNECT_SEEN] = True
            self.stats.disconnects_observed += 1

    def next_id(self, prefix: str) -> str:
        return f"{prefix}-{self._id_prefix}{next(self._ids):016x}"

    def require_model(self, model: str, kind: str) -> None:
        if self.options.strict_models and model not in self._models:
            raise err.model_not_found(model)
        actual = model_kind(model)
        if actual == kind:
            return
        if kind == "chat":
            raise err.SimError(404, _NOT_CHAT, param="model")
        if kind == "completion":
            raise err.SimError(404, _NOT_LEGACY, param="model")
        what = {"image": "image generation", "audio": "transcription", "speech": "speech"}.get(
            kind, "embeddings"
        )
        raise err.SimError(404, f"The model `{model}` does not support {what}.", param="model")

    # ---- streaming ---------------------------------------------------------------------------------

    async def stream(
        self, request: web.Request, events: Iterator[dict[str, Any]], controls: Controls
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={**_SSE_HEADERS, "x-request-id": request[_REQUEST_ID]})
        await response.prepare(request)
        self.stats.streams_started += 1
        try:
            if controls.chunk_delay_ms <= 0 and controls.fail_after_chunks is None:
                # Nothing to pace: one write is far cheaper, and SSE framing is the same to the reader.
                await response.write(b"".join(sse_frame(e) for e in events) + _DONE)
            elif not await self._paced(request, response, events, controls):
                return response
            await response.write_eof()
        except ConnectionResetError:
            self.observe_disconnect(request)
            return response
        self.stats.streams_completed += 1
        return response

    async def _paced(
        self,
        request: web.Request,
        response: web.StreamResponse,
        events: Iterator[dict[str, Any]],
        controls: Controls,
    ) -> bool:
        """Write events one by one; False when the stream was deliberately broken."""
        delay = controls.chunk_delay_ms / 1000
        for sent, event in enumerate(events):
            if controls.fail_after_chunks is not None and sent >= controls.fail_after_chunks:
                await self._break(request, response, controls.fail_mode)
                return False
            if delay and sent:
                await asyncio.sleep(delay)
            if self._closing:
                await self._break(request, response, "close")
                return False
            await response.write(sse_frame(event))
        await response.write(_DONE)
        return True

    async def _break(self, request: web.Request, response: web.StreamResponse, mode: str) -> None:
        self.stats.streams_broken += 1
        if mode == "error-event":
            # What OpenAI does when a started stream fails: an error object as data, then the end.
            await response.write(b"data: " + err.stream_error().body() + b"\n\n")
            await response.write_eof()
            return
        # Abrupt close: the chunked body never terminates, so the client sees a truncated stream.
        if request.transport is not None:
            request.transport.abort()

    # ---- endpoints ---------------------------------------------------------------------------------

    async def chat_completions(
        self, request: web.Request, body: Body, controls: Controls
    ) -> web.StreamResponse:
        model = v.validate_chat(body, self.options.extra_fields)
        self.require_model(model, "chat")
        plan = plan_chat(
            body,
            completion_id=self.next_id("chatcmpl"),
            created=int(time.time()),
            fingerprint=self.options.system_fingerprint,
        )
        if not body.get("stream"):
            return json_response(chat_response(plan))
        plan.stream_chunks = controls.stream_chunks
        return await self.stream(request, chat_events(plan), controls)

    async def completions(self, request: web.Request, body: Body, controls: Controls) -> web.StreamResponse:
        model = v.validate_completion(body, self.options.extra_fields)
        self.require_model(model, "completion")
        plan = plan_completion(
            body,
            completion_id=self.next_id("cmpl"),
            created=int(time.time()),
            fingerprint=self.options.system_fingerprint,
        )
        if not body.get("stream"):
            return json_response(completion_response(plan))
        plan.stream_chunks = controls.stream_chunks
        return await self.stream(request, completion_events(plan), controls)

    async def embeddings(self, request: web.Request, body: Body, controls: Controls) -> web.StreamResponse:
        model = v.validate_embeddings(body, self.options.extra_fields)
        self.require_model(model, "embedding")
        return json_response(embeddings_response(body))

    async def image_generations(
        self, request: web.Request, body: Body, controls: Controls
    ) -> web.StreamResponse:
        self.require_model(validate_images(body), "image")
        return json_response(images_response(body))

    async def transcriptions(
        self, request: web.Request, body: Body, controls: Controls
    ) -> web.StreamResponse:
        files = request.get(_FILES, {})
        self.require_model(validate_transcription(body, files), "audio")
        return transcription_response(body, files["file"], "transcribe")

    async def translations(self, request: web.Request, body: Body, controls: Controls) -> web.StreamResponse:
        files = request.get(_FILES, {})
        self.require_model(validate_transcription(body, files), "audio")
        return transcription_response(body, files["file"], "translate")

    async def speech(self, request: web.Request, body: Body, controls: Controls) -> web.StreamResponse:
        self.require_model(validate_speech(body), "speech")
        return speech_response(body)

    async def list_models(self, request: web.Request, body: Body, controls: Controls) -> web.StreamResponse:
        return json_response({"object": "list", "data": [model_object(m) for m in self.options.models]})

    async def get_model(self, request: web.Request, body: Body, controls: Controls) -> web.StreamResponse:
        model = request.match_info["model"]
        if model not in self._models:
            raise err.model_not_found(model)
        return json_response(model_object(model))

    async def not_found(self, request: web.Request, body: Body, controls: Controls) -> web.StreamResponse:
        raise err.route_not_found(request.method, request.path)

    # ---- introspection (/_sim) ---------------------------------------------------------------------

    async def recorded(self, request: web.Request) -> web.StreamResponse:
        return json_response({"object": "list", "data": self.recorder.entries()})

    async def clear_recorded(self, request: web.Request) -> web.StreamResponse:
        self.recorder.clear()
        return web.Response(status=204)

    async def stats_view(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.stats.as_dict())


OPENAI_SIM_KEY = web.AppKey("openai_sim", OpenAISim)


def create_openai_sim_app(options: SimOptions | None = None) -> web.Application:
    """The simulator as an aiohttp app; the :class:`OpenAISim` is at ``app[OPENAI_SIM_KEY]``."""
    sim = OpenAISim(options or SimOptions())
    app = web.Application(client_max_size=64 * 1024**2)
    app[OPENAI_SIM_KEY] = sim
    app.on_shutdown.append(sim.on_shutdown)
    app.router.add_get("/v1/models", sim.endpoint(sim.list_models))
    app.router.add_get("/v1/models/{model:.+}", sim.endpoint(sim.get_model))
    app.router.add_post("/v1/chat/completions", sim.endpoint(sim.chat_completions))
    app.router.add_post("/v1/completions", sim.endpoint(sim.completions))
    app.router.add_post("/v1/embeddings", sim.endpoint(sim.embeddings))
    app.router.add_post("/v1/images/generations", sim.endpoint(sim.image_generations))
    app.router.add_post("/v1/audio/transcriptions", sim.endpoint(sim.transcriptions))
    app.router.add_post("/v1/audio/translations", sim.endpoint(sim.translations))
    app.router.add_post("/v1/audio/speech", sim.endpoint(sim.speech))
    app.router.add_get("/_sim/requests", sim.recorded)
    app.router.add_delete("/_sim/requests", sim.clear_recorded)
    app.router.add_get("/_sim/stats", sim.stats_view)
    app.router.add_route("*", "/v1/{tail:.*}", sim.endpoint(sim.not_found))
    return app
