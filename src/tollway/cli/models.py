"""`tollway models`: what the configured catalog serves, and which offline models are installed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tollway.catalog.build import build_catalog
from tollway.cli.common import fail
from tollway.settings import ConfigError, Settings


def models(json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List models: configured ones and the offline `local` ones (with whether they can load here)."""
    settings = Settings()
    try:
        config = settings.load_gateway_config()
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    local_rows = _local_rows() if settings.local_models and "local" not in config.providers else []
    local_ids = {row[0] for row in local_rows}
    catalog = build_catalog(config, extra_providers=["local"] if local_rows else [])
    rows = [
        (m.id, ", ".join(sorted(m.capabilities)), "configured")
        for m in catalog.listed()
        if m.id not in local_ids
    ]
    rows += local_rows
    if json:
        import orjson

        typer.echo(
            orjson.dumps(
                [{"id": r[0], "capabilities": r[1].split(", "), "status": r[2]} for r in rows]
            ).decode()
        )
        return
    table = Table("id", "capabilities", "status")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def _local_rows() -> list[tuple[str, str, str]]:
    try:
        from tollway.providers.local.catalog import LOCAL_MODELS
    except ImportError:
        return []
    rows = []
    for entry in LOCAL_MODELS:
        missing = [requirement.distribution for requirement in entry.missing()]
        status = "installed" if not missing else f"not installed (pip install {' '.join(missing)})"
        rows.append((entry.id, ", ".join(sorted(entry.capabilities)), status))
    return rows
