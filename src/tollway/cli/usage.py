"""`tollway usage`: the ledger as a table, straight from the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tollway.cli.common import fail, with_control


def usage(
    project: Annotated[str | None, typer.Option(help="Project name or id.")] = None,
    key: Annotated[str | None, typer.Option(help="Key id.")] = None,
    model: Annotated[str | None, typer.Option(help="Served model id.")] = None,
    days: Annotated[int, typer.Option(help="How many days back.")] = 7,
    group_by: Annotated[
        str | None, typer.Option(help="model, key or day; default: one row per call.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Rows, when not grouped.")] = 50,
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
    if not rows:
        typer.echo("no usage in that window")
        return
    columns = list(rows[0].keys())
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
    Console().print(table)
