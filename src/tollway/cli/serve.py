"""`tollway serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tollway.cli.common import fail
from tollway.settings import ConfigError, Settings


def serve(
    config: Annotated[
        Path | None, typer.Option(help="YAML file of providers, models and routing (TOLLWAY_CONFIG).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8080).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes sharing the port (needs Redis).")
    ] = None,
) -> None:
    """Run the gateway."""
    overrides = {
        name: value
        for name, value in {"config": config, "host": host, "port": port, "workers": workers}.items()
        if value is not None
    }
    settings = Settings(**overrides)  # type: ignore[arg-type]
    from tollway.logs import configure as configure_logging  # imports aiohttp, which serving needs anyway
    from tollway.server import serve as run_server

    configure_logging(settings.log_level)  # before the configuration is read: it may warn

    try:
        settings.load_gateway_config()  # fail fast, before binding, on a bad config
        run_server(settings)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
