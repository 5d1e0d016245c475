"""`tollway usage`: the ledger as a table, straight from the database."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from tollway.cli.common import fail, with_control

GROUPED_COLUMNS = ["requests", "input_tokens", "output_tokens", "cost", "errors", "avg_latency_ms"]
ROW_COLUMNS = [
    "created_at",
    "request_id",
    "model_served",
    "status",
    "input_tokens",
    "output_tokens",
    "cost",
    "latency_ms",
]


def usage(
    project: Annotated[str | None, typer.Option(help="Project name or id.")] = None,
    key: Annotated[str | None, typer.Option(help="Key id.")] = None,
    model: Annotated[str | None, typer.Option(help="Served model id.")] = None,
    days: Annotated[int, typer.Option(help="How many days back.")] = 7,
    group_by: Annotated[
        str | None, typer.Option(help="model, key or day; default: one row per call.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Rows, when not grouped.")] = 50,
    json: Annotated[bool, typer.Option("--json", help="Print JSON with every column.")] = False,
) -> None:
    """Show usage and cost from the ledger."""
    from tollway.metering.queries import usage_grouped, usage_rows

    if group_by not in (None, "model", "key", "day"):
        raise fail("--group-by must be model, key or day")
    since = datetime.now(UTC) - timedelta(days=days)

    async def query(store: Any) -> list[dict[str, Any]]:
        project_id = (await store.find_project(project)).id if project else None
        filters: dict[str, Any] = {"project_id": project_id, "key_id": key, "model": model, "since": since}
        async with store.sessions() as session:
            if group_by:
                return list(await usage_grouped(session, group_by=group_by, **filters))  # type: ignore[arg-type]
            return list(await usage_rows(session, limit=limit, **filters))

    rows = with_control(query)
    if json:
        typer.echo(orjson.dumps(rows, default=str).decode())
        return
    if not rows:
        typer.echo("no usage in that window")
        return
    columns = [group_by, *GROUPED_COLUMNS] if group_by else ROW_COLUMNS
    table = Table(*columns)
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    # Wide enough for the table when output is not a terminal (piped to a file or another command).
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)
