"""CLI: `idbroker audit verify` — check the audit log's hash chain end to end."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlmodel import Session

from idbroker.audit.verify import verify_chain
from idbroker.cli.db import database_errors, fail, open_engine

audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")


@audit_app.command("verify")
def verify_command(
    batch: Annotated[int, typer.Option(min=1, help="Events read per query.")] = 10000,
) -> None:
    """Recompute every event's hash and link; exit 1 naming the first event that fails."""
    engine = open_engine()
    with database_errors(engine), Session(engine) as session:
        report = verify_chain(session, batch=batch)
    engine.dispose()
    if not report.ok:
        where = f" (seq {report.bad_seq})" if report.bad_seq is not None else ""
        raise fail(
            f"audit log verification FAILED{where}: {report.problem} ({report.checked} events verified before it)"
        )
    typer.echo(f"audit log verified: {report.checked} events")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
