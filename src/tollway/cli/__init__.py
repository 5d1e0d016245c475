"""The `tollway` command."""

from __future__ import annotations

import typer

from tollway import __version__
from tollway.cli import control, credits, db, models, serve, usage

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Tollway: one front door to every model.")
app.command("serve")(serve.serve)
app.add_typer(control.projects, name="projects")
app.add_typer(control.keys, name="keys")
app.add_typer(db.db, name="db")
app.add_typer(credits.credits, name="credits")
app.command("usage")(usage.usage)
app.command("models")(models.models)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app()
