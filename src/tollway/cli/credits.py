"""`tollway credits grant|show`.

While a server runs on this data directory its balances live in memory, so a grant goes through its
admin API (and is durable before the answer); with no server running it is written to the database,
where the server finds it on start.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import aiohttp
import typer

from tollway.api.admin.common import money
from tollway.cli.common import fail, with_control
from tollway.money import credit_amount_problem
from tollway.server import running_server_pid
from tollway.settings import Settings

credits = typer.Typer(no_args_is_help=True, help="Project credit balances (US dollars).")


def _amount(value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:
        raise fail(f"amount must be a number of dollars, e.g. 25 or 0.50 (got {value!r})") from exc
    problem = credit_amount_problem(amount)
    if problem is not None:
        raise fail(problem)
    return amount


@credits.command("grant")
def grant(
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    amount: Annotated[str, typer.Argument(help="Dollars; negative to adjust down.")],
    note: Annotated[str | None, typer.Option(help="Why (kept with the entry).")] = None,
) -> None:
    """Add credit to a project (or adjust it down with a negative amount)."""
    value = _amount(amount)
    settings = Settings()
    if running_server_pid(settings) is not None:
        body = _api(
            settings, "POST", f"/admin/projects/{project}/credits", {"amount": str(value), "note": note}
        )
        typer.echo(f"{project}: balance {body['balance']}")
        return

    async def direct(store: Any) -> Decimal:
        from tollway.metering.ledger import add_credit

        found = await store.find_project(project)
        await add_credit(store.sessions, found.id, value, note)
        refreshed = await store.find_project(found.id)
        return Decimal(refreshed.credited - refreshed.spent)

    typer.echo(f"{project}: balance {money(with_control(direct))}")


@credits.command("show")
def show(project: Annotated[str, typer.Argument(help="Project name or id.")]) -> None:
    """Show a project's balance and spend."""
    settings = Settings()
    if running_server_pid(settings) is not None:
        body = _api(settings, "GET", f"/admin/projects/{project}", None)
        typer.echo(f"{body['name']}: balance {body['balance']}, spent {body['spent']}")
        return
    found = with_control(lambda store: store.find_project(project))
    typer.echo(f"{found.name}: balance {money(found.credited - found.spent)}, spent {money(found.spent)}")


def _api(settings: Settings, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
    if not settings.admin_key:
        raise fail("a server is running on this data directory; set TOLLWAY_ADMIN_KEY for its admin API")
    url = f"http://{settings.host}:{settings.port}{path}"

    async def call() -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {settings.admin_key}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url, json=body, headers=headers) as resp,
        ):
            return resp.status, await resp.json()

    try:
        status, data = asyncio.run(call())
    except aiohttp.ClientError as exc:
        raise fail(f"cannot reach the running server at {url}: {exc}") from exc
    if status >= 400:
        raise fail(str(data.get("error", {}).get("message", data)))
    return data
