"""`tollway projects ...` and `tollway keys ...`: the control plane from a shell, straight on the database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from tollway.api.admin.common import key_view, project_view
from tollway.cli.common import fail, with_control
from tollway.money import MAX_CREDIT, SCALE, exact_units
from tollway.store.control import KeySpec, LimitValues

projects = typer.Typer(no_args_is_help=True, help="Projects.")
keys = typer.Typer(no_args_is_help=True, help="API keys.")
console = Console()


@projects.command("create")
def create_project(
    name: str,
    credit_enforced: Annotated[
        bool, typer.Option("--credit-enforced", help="Refuse calls when credit runs out.")
    ] = False,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute for the whole project.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute for the whole project.")] = None,
    max_concurrency: Annotated[
        int | None, typer.Option(help="Concurrent calls for the whole project.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a project."""
    project = with_control(
        lambda store: store.create_project(
            name, credit_enforced=credit_enforced, limits=LimitValues(rpm, tpm, max_concurrency)
        )
    )
    if json:
        typer.echo(orjson.dumps(project_view(project)).decode())
    else:
        typer.echo(f"created project {project.name} ({project.id})")


@projects.command("list")
def list_projects(json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List projects."""
    rows = with_control(lambda store: store.list_projects())
    if json:
        typer.echo(orjson.dumps([project_view(p) for p in rows]).decode())
        return
    table = Table("id", "name", "created", "credit enforced")
    for project in rows:
        table.add_row(
            project.id,
            project.name,
            project.created_at.strftime("%Y-%m-%d %H:%M"),
            str(project.credit_enforced),
        )
    console.print(table)


def _parse_expiry(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise fail(
            f"--expires must be an ISO date or time, e.g. 2027-01-31 or 2027-01-31T12:00:00Z (got {value!r})"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_money(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:
        raise fail(f"--spend-cap must be a number of dollars, e.g. 50 or 12.5 (got {value!r})") from exc
    if not amount.is_finite() or amount < 0:
        raise fail("--spend-cap must be zero or more dollars")
    if amount > MAX_CREDIT or exact_units(amount) is None:
        raise fail(f"--spend-cap must be at most {MAX_CREDIT:,} dollars, to 1e-{SCALE} at the finest")
    return amount


@keys.command("create")
def create_key(
    project: Annotated[str, typer.Option(help="Project name or id.")],
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="models:use (default) or admin; repeatable.")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Allow only these models; repeatable.")
    ] = None,
    expires: Annotated[str | None, typer.Option(help="Expiry, ISO 8601 (e.g. 2027-01-31).")] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.")] = None,
    max_concurrency: Annotated[int | None, typer.Option(help="Concurrent calls.")] = None,
    spend_cap: Annotated[str | None, typer.Option(help="Most this key may spend in total (dollars).")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON (the key is in the 'key' field).")] = False,
) -> None:
    """Create an API key. The key is printed once; only its hash is stored."""
    expires_at = _parse_expiry(expires)
    cap = _parse_money(spend_cap)
    record, key = with_control(
        lambda store: store.create_key(
            KeySpec(
                project=project,
                name=name,
                scopes=tuple(scope) if scope else ("models:use",),
                models=tuple(model) if model else None,
                expires_at=expires_at,
                limits=LimitValues(rpm, tpm, max_concurrency),
                spend_cap=cap,
            )
        )
    )
    if json:
        typer.echo(orjson.dumps({**key_view(record), "key": key}).decode())
    else:
        typer.echo(key)
        typer.secho(
            f"key {record.id} for project {project}: shown once, store it now",
            err=True,
            fg=typer.colors.YELLOW,
        )


@keys.command("list")
def list_keys(
    project: Annotated[str | None, typer.Option(help="Only this project's keys.")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys (never the secrets)."""
    rows = with_control(lambda store: store.list_keys(project))
    if json:
        typer.echo(orjson.dumps([key_view(k, p) for k, p in rows]).decode())
        return
    table = Table("id", "prefix", "project", "name", "scopes", "expires", "revoked")
    for key, proj in rows:
        table.add_row(
            key.id,
            key.prefix,
            proj.name,
            key.name or "",
            key.scopes,
            key.expires_at.strftime("%Y-%m-%d") if key.expires_at else "",
            "yes" if key.revoked_at else "",
        )
    console.print(table)


@keys.command("revoke")
def revoke_key(key_id: str) -> None:
    """Revoke a key; it fails from its next request on."""
    record = with_control(lambda store: store.revoke_key(key_id), notify=True)
    typer.echo(f"revoked {record.id} ({record.prefix})")
