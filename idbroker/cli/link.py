"""CLI: `idbroker link` — link records that have no person yet, or re-link everyone with `--full`."""

from __future__ import annotations

from typing import Annotated

import typer

from idbroker.audit.chain import append as audit
from idbroker.cli.running import cli_actor, counted, transaction
from idbroker.config import get_settings
from idbroker.contacts.collect import catch_up
from idbroker.linking.service import link_records


def link_command(
    full: Annotated[bool, typer.Option("--full", help="Re-examine every record against everyone")] = False,
) -> None:
    """Link pending records (or re-link all); merges, new people and review cases are written."""
    settings = get_settings()
    with transaction(bulk=True) as session, counted("link", "records") as progress:
        report = link_records(session, settings=settings, actor=cli_actor(), full=full, progress=progress)
        catch_up(session, settings)  # contacts (issue 3): the values and primaries of the people linked
        audit(session, actor=cli_actor(), action="link.full" if full else "link", details=report.as_dict())
    typer.echo(
        f"linked {report.linked} records ({report.probed} re-examined): {report.new_people} new people, "
        f"{report.joined} joined a person, {report.merged} people merged, {report.queued} pairs queued for review, "
        f"{report.vetoed} vetoed"
    )


def register(app: typer.Typer) -> None:
    app.command("link")(link_command)
