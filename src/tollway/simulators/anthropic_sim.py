"""A strict loopback Anthropic Messages API, for tests and the benchmark.

Routes: `POST /v1/messages` (JSON or SSE), `POST /v1/messages/count_tokens`, and the test surface
`GET|DELETE /_sim/requests` (recorded request bodies, bounded). Requests need `x-api-key` (or a Bearer
token) and `anthropic-version`, and are validated with the same rules (and wording) as the real API.

Answers are deterministic functions of the request, identical streamed or not (tokens included):
- after tool results: "Tool results: <each result>";
- when tools are offered and the last user text names one (or mentions the weather or a tool), or
  tool_choice is any/tool: a short text block and one tool_use per matching tool (parallel unless
  `disable_parallel_tool_use`), inputs built from each tool's input_schema;
- otherwise "Echo: <last user text>", cut at stop_sequences and max_tokens.

Failure injection by request header: `x-sim-fail: <status>` (429 carries retry-after, 529 is
overloaded_error), `x-sim-latency-ms: <ms>`, `x-sim-fail-after-events: <n>` (a stream sends n events,
then `event: error` with overloaded_error).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tollway.errors import InvalidRequest
from tollway.formats.anthropic_stream import sse_event
from tollway.formats.anthropic_validate import validate_messages_request
from tollway.simulators.anthropic_sim_model import (
    Event,
    count_input_tokens,
    message_json,
    plan_message,
    stream_events,
)

JSON = dict[str, Any]

# Injected failures: status -> (Anthropic error type, message as Anthropic words it).
FAILURES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Simulated invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}


class SimError(Exception):
    """A refusal, rendered as Anthropic's `{"type":"error","error":{"type","message"}}`."""

    def __init__(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers or {}

    def response(self, request_id: str) -> web.Response:
        body = {
            "type": "error",
            "error": {"type": self.kind, "message": self.message},
            "request_id": request_id,
        }
        headers = {**self.headers, "request-id": request_id}
        return web.json_response(body, status=self.status, headers=headers, dumps=_dumps)


def _dumps(data: Any) -> str:
    return orjson.dumps(data).decode()


@dataclass(frozen=True, slots=True)
class AnthropicSimOptions:
    api_key: str | None = None  # None: any non-empty key is accepted
    models: frozenset[str] | None = None  # None: any model name is served
    latency_ms: float = 0.0
    chunk_delay_ms: float = 0.0
    record_limit: int = 200


# --- the HTTP server -------------------------------------------------------------------------------


class AnthropicSim:
    """One simulator instance: options, recorded requests, id sequence."""

    def __init__(self, options: AnthropicSimOptions) -> None:
        self.options = options
        self.requests: deque[JSON] = deque(maxlen=options.record_limit)
        self._ids = itertools.count(1)

    def next_id(self, prefix: str) -> str:
        return f"{prefix}_01sim{next(self._ids):018d}"

    def endpoint(
        self, handler: Callable[[web.Request, Any], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def run(request: web.Request) -> web.StreamResponse:
            request_id = self.next_id("req")
            try:
                body = await self._admit(request)
                return await handler(request, body)
            except SimError as exc:
                return exc.response(request_id)

        return run

    async def _admit(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        self.requests.append({"method": request.method, "path": request.path, "body": body})
        latency = float(request.headers.get("x-sim-latency-ms") or 0) or self.options.latency_ms
        if latency:
            await asyncio.sleep(latency / 1000)
        self._authenticate(request)
        _inject_failure(request)
        return body

    def _authenticate(self, request: web.Request) -> None:
        key = request.headers.get("x-api-key") or _bearer(request.headers.get("authorization", ""))
        if not key:
            raise SimError(401, "authentication_error", "x-api-key header is required")
        if self.options.api_key is not None and key != self.options.api_key:
            raise SimError(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            raise SimError(400, "invalid_request_error", "anthropic-version: header is required")

    def _validate(self, body: Any, *, count_tokens: bool = False) -> None:
        try:
            validate_messages_request(body, count_tokens=count_tokens)
        except InvalidRequest as exc:
            raise SimError(400, "invalid_request_error", exc.message) from None
        if self.options.models is not None and body["model"] not in self.options.models:
            raise SimError(404, "not_found_error", f"model: {body['model']}")

    async def messages(self, request: web.Request, body: JSON) -> web.StreamResponse:
        self._validate(body)
        plan = plan_message(body)
        message_id = self.next_id("msg")
        if not body.get("stream"):
            return web.json_response(message_json(plan, message_id, body["model"]), dumps=_dumps)
        return await self._stream(request, stream_events(plan, message_id, body["model"]))

    async def count_tokens(self, request: web.Request, body: JSON) -> web.StreamResponse:
        self._validate(body, count_tokens=True)
        return web.json_response({"input_tokens": count_input_tokens(body)}, dumps=_dumps)

    async def _stream(self, request: web.Request, events: Iterator[Event]) -> web.StreamResponse:
        fail_after = request.headers.get("x-sim-fail-after-events")
        limit = int(fail_after) if fail_after else None
        response = web.StreamResponse(headers={**SSE_HEADERS, "request-id": self.next_id("req")})
        await response.prepare(request)
        for sent, (name, data) in enumerate(events):
            if limit is not None and sent >= limit:
                error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                await response.write(sse_event("error", error))
                break
            await response.write(sse_event(name, data))
            if self.options.chunk_delay_ms:
                await asyncio.sleep(self.options.chunk_delay_ms / 1000)
        await response.write_eof()
        return response

    async def not_found(self, request: web.Request, body: Any) -> web.StreamResponse:
        raise SimError(404, "not_found_error", "Not Found")

    async def recorded(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"requests": list(self.requests)}, dumps=_dumps)

    async def clear_recorded(self, request: web.Request) -> web.StreamResponse:
        self.requests.clear()
        return web.json_response({"cleared": True})


def _bearer(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _inject_failure(request: web.Request) -> None:
    wanted = request.headers.get("x-sim-fail")
    if not wanted:
        return
    status = int(wanted)
    default = (
        ("api_error", "Internal server error") if status >= 500 else ("invalid_request_error", "Bad request.")
    )
    kind, message = FAILURES.get(status, default)
    headers = {"retry-after": request.headers.get("x-sim-retry-after", "1")} if status == 429 else {}
    raise SimError(status, kind, message, headers)


ANTHROPIC_SIM_KEY = web.AppKey("anthropic_sim", AnthropicSim)


def create_anthropic_app(**options: Any) -> web.Application:
    """The simulator app; `options` are `AnthropicSimOptions` fields (`api_key`, `models`, ...)."""
    if options.get("models") is not None:
        options["models"] = frozenset(options["models"])
    sim = AnthropicSim(AnthropicSimOptions(**options))
    app = web.Application(client_max_size=32 * 1024 * 1024)  # Anthropic's request size limit
    app[ANTHROPIC_SIM_KEY] = sim
    app.router.add_post("/v1/messages", sim.endpoint(sim.messages))
    app.router.add_post("/v1/messages/count_tokens", sim.endpoint(sim.count_tokens))
    app.router.add_get("/_sim/requests", sim.recorded)
    app.router.add_delete("/_sim/requests", sim.clear_recorded)
    app.router.add_route("*", "/{tail:.*}", sim.endpoint(sim.not_found))
    return app


@dataclass(frozen=True, slots=True)
class RunningAnthropicSim:
    host: str
    port: int
    sim: AnthropicSim

    @property
    def url(self) -> str:
        """What an Anthropic client takes as `base_url` (without /v1)."""
        return f"http://{self.host}:{self.port}"


@contextlib.asynccontextmanager
async def serve_anthropic_sim(
    host: str = "127.0.0.1", port: int = 0, **options: Any
) -> AsyncIterator[RunningAnthropicSim]:
    """Run the simulator until the block exits (port 0 picks a free port)."""
    from tollway.simulators.runner import serve_app  # runner imports every simulator kind

    app = create_anthropic_app(**options)
    async with serve_app(app, host, port) as bound:
        yield RunningAnthropicSim(host, bound, app[ANTHROPIC_SIM_KEY])


# --- command line (`python -m tollway.simulators anthropic`) ------------------------------------


def add_cli_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-key", default=None, help="require this key (default: any key)")
    parser.add_argument("--model", action="append", default=None, help="serve only these models (repeatable)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before every answer")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay between stream events")


async def serve_cli(args: argparse.Namespace) -> None:
    async with serve_anthropic_sim(
        args.host,
        args.port,
        api_key=args.api_key,
        models=args.model,
        latency_ms=args.latency_ms,
        chunk_delay_ms=args.chunk_delay_ms,
    ) as sim:
        print(f"anthropic simulator listening on {sim.url}", flush=True)
        await asyncio.Event().wait()
