"""CLI: `idbroker export identities|candidates PATH` — privacy-officer exports, each audited."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from idbroker.cli.running import cli_actor, transaction
from idbroker.directory.export import export_candidates, export_identities

export_app = typer.Typer(no_args_is_help=True, help="Export identities or review cases as CSV (audited).")


@export_app.command("identities")
def identities(path: Annotated[Path, typer.Argument(help="CSV file to write")]) -> None:
    """Every record with its person: person,source,record,status."""
    with transaction() as session:
        rows = export_identities(session, path, actor=cli_actor())
    typer.echo(f"wrote {rows} records to {path}")


@export_app.command("candidates")
def candidates(path: Annotated[Path, typer.Argument(help="CSV file to write")]) -> None:
    """Open review cases: candidate,person_a,person_b,score,state."""
    with transaction() as session:
        rows = export_candidates(session, path, actor=cli_actor())
    typer.echo(f"wrote {rows} review cases to {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
