"""CLI: `idbroker staff grant|revoke UID ROLE` and `idbroker staff list [UID]` — who may use the consoles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from idbroker.cli.db import fail
from idbroker.cli.running import cli_actor, transaction
from idbroker.staff.roles import ROLES, StaffRoleError, grant, list_grants, revoke

staff_app = typer.Typer(no_args_is_help=True, help="Staff roles: " + ", ".join(ROLES) + " (each change audited).")
Uid = Annotated[str, typer.Argument(help="The CAS uid (工号) the staff member signs in with")]
Role = Annotated[str, typer.Argument(help=" | ".join(ROLES))]


def _change(change: Callable[..., object], uid: str, role: str, done: str) -> None:
    try:
        with transaction() as session:
            change(session, uid, role, actor=cli_actor())
    except StaffRoleError as exc:
        raise fail(f"{exc}\nnothing was changed") from None
    typer.echo(done)


@staff_app.command("grant")
def grant_command(uid: Uid, role: Role) -> None:
    """Give UID the ROLE (it works from their next request)."""
    _change(grant, uid, role, f"granted {role} to {uid}")


@staff_app.command("revoke")
def revoke_command(uid: Uid, role: Role) -> None:
    """Take the ROLE from UID (it stops working at once)."""
    _change(revoke, uid, role, f"revoked {role} from {uid}")


@staff_app.command("list")
def list_command(uid: Annotated[str | None, typer.Argument(help="Only this uid")] = None) -> None:
    """Every role granted (or UID's), with who granted it and when."""
    with transaction() as session:
        grants = list_grants(session, uid)
    for row in grants:
        typer.echo(f"{row.uid}\t{row.role}\t{row.granted_by}\t{row.at:%Y-%m-%d %H:%M}")
    typer.echo(f"{len(grants)} grants")


def register(app: typer.Typer) -> None:
    app.add_typer(staff_app, name="staff")
