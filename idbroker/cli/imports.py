"""CLI: `idbroker import SOURCE PATH` — read a campus export (CSV, XLSX, or LDAP for cas) and link it."""

from __future__ import annotations

from typing import Annotated

import typer

from idbroker.cli.running import cli_actor, counted, transaction
from idbroker.config import get_settings
from idbroker.sources.importer import run_import
from idbroker.sources.report import COUNTS

SHOWN_PROBLEMS = 50


def import_command(
    source: Annotated[str, typer.Argument(help="student, hr, cas, billing, or any source with a mapping file")],
    path: Annotated[str, typer.Argument(help="CSV or XLSX file, or ldap://HOST:PORT/BASE-DN for cas")],
    partial: Annotated[bool, typer.Option("--partial", help="Records missing from this file stay active")] = False,
    no_link: Annotated[bool, typer.Option("--no-link", help="Import only; link later with `idbroker link`")] = False,
    allow_mass_deactivation: Annotated[
        bool, typer.Option("--allow-mass-deactivation", help="Accept a full export that drops most records")
    ] = False,
) -> None:
    """Import one export: new, changed and (for a full export) vanished records, then link them."""
    settings = get_settings()
    with transaction(bulk=True) as session, counted(f"import {source}", "rows") as progress:
        report = run_import(
            session,
            source=source,
            location=path,
            settings=settings,
            actor=cli_actor(),
            full=not partial,
            link=not no_link,
            allow_mass_deactivation=allow_mass_deactivation,
            progress=progress,
        )
    for problem in report.problems[:SHOWN_PROBLEMS]:
        typer.echo(str(problem))
    more = len(report.problems) + report.problems_omitted - SHOWN_PROBLEMS
    if more > 0:
        typer.echo(f"… and {more} more problems")
    typer.echo(" / ".join(f"{name.replace('_', ' ')} {report.counts[name]}" for name in COUNTS))
    if report.link:
        link = report.link
        typer.echo(
            f"linked {link['linked']} records: {link['new_people']} new people, {link['joined']} joined a person, "
            f"{link['merged']} people merged, {link['queued']} pairs queued for review"
        )


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
