"""The floor: a bare pass-through proxy on Tollway's own stack (aiohttp server + client, uvloop).

    python -m bench.floor --port 14000 --upstream http://127.0.0.1:18000 --paced http://127.0.0.1:18001 \
        --slow http://127.0.0.1:18002

No auth, no JSON parsing, no metering. It forwards the request bytes over one pooled keep-alive
ClientSession and returns the upstream bytes; streams pass through chunk by chunk (`iter_any()`).
The only work per request beyond that is a byte search or two to send the paced and the slow model
to their own upstreams, so that the same request bodies work for every target. Whatever Tollway costs above
this process is the price of its features.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import aiohttp
from aiohttp import web

PACED_MARKER = b'-paced"'
SLOW_MARKER = b'-slow"'
SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAMS = web.AppKey("upstreams", tuple)


async def forward(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    plain, paced, slow = request.app[UPSTREAMS]
    base = paced if PACED_MARKER in body else slow if SLOW_MARKER in body else plain
    headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
    async with request.app[SESSION].post(base + request.path, data=body, headers=headers) as upstream:
        content_type = upstream.headers.get("Content-Type", "application/json")
        if not content_type.startswith("text/event-stream"):
            payload = await upstream.read()
            return web.Response(body=payload, status=upstream.status, headers={"Content-Type": content_type})
        response = web.StreamResponse(status=upstream.status, headers={"Content-Type": content_type})
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def ready(_request: web.Request) -> web.StreamResponse:
    return web.Response(body=b'{"status":"ready"}', content_type="application/json")


async def _open_session(app: web.Application) -> None:
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    app[SESSION] = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600))


async def _close_session(app: web.Application) -> None:
    await app[SESSION].close()


def build_app(upstream: str, paced: str, slow: str) -> web.Application:
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app[UPSTREAMS] = (upstream.rstrip("/"), paced.rstrip("/"), slow.rstrip("/"))
    app.on_startup.append(_open_session)
    app.on_cleanup.append(_close_session)
    app.router.add_get("/ready", ready)
    app.router.add_get("/health", ready)
    app.router.add_post("/{tail:.*}", forward)
    return app


async def serve(host: str, port: int, upstream: str, paced: str, slow: str) -> None:
    runner = web.AppRunner(build_app(upstream, paced, slow), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL of the mock, without /v1")
    parser.add_argument("--paced", required=True, help="base URL of the paced mock, without /v1")
    parser.add_argument("--slow", required=True, help="base URL of the slow (latency) mock, without /v1")
    args = parser.parse_args()
    import uvloop

    uvloop.run(serve(args.host, args.port, args.upstream, args.paced, args.slow))


if __name__ == "__main__":
    main()
