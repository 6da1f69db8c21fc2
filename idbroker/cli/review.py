"""CLI: `idbroker merge|unmerge` and `idbroker review list|decide` — people deciding what the linker could not."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlmodel import select

from idbroker.cli.running import cli_actor, transaction
from idbroker.config import get_settings
from idbroker.linking.explain import describe_evidence
from idbroker.linking.merge import MergeRefused, unmerge
from idbroker.linking.models import MergeOperation
from idbroker.linking.review import DECISIONS, decide, manual_merge, open_candidates

review_app = typer.Typer(no_args_is_help=True, help="The review queue of uncertain merges.")
Reason = Annotated[str, typer.Option("--reason", help="Why (a ticket number or call): goes to the audit log")]


def merge_command(
    survivor: Annotated[str, typer.Argument(help="Person who stays")],
    absorbed: Annotated[str, typer.Argument(help="Person whose ID becomes an alias of the survivor")],
    reason: Reason,
    force: Annotated[bool, typer.Option("--force", help="Merge despite a veto (with proof)")] = False,
) -> None:
    """Merge two people into one (recorded, undoable with `idbroker unmerge`)."""
    with transaction() as session:
        op = manual_merge(session, get_settings(), survivor, absorbed, actor=cli_actor(), reason=reason, force=force)
    typer.echo(f"merged {op.absorbed_id} into {op.survivor_id} (operation {op.id}, {len(op.record_ids)} records moved)")


def unmerge_command(
    target: Annotated[str, typer.Argument(help="A merge operation number, or the absorbed person's ID")],
    reason: Reason,
) -> None:
    """Undo a merge: the absorbed person gets back its records and ID; the pair is kept apart."""
    with transaction() as session:
        if target.isdigit():
            operation_id = int(target)
        else:
            found = session.exec(
                select(MergeOperation.id)  # type: ignore[call-overload]
                .where(
                    MergeOperation.absorbed_id == target,
                    MergeOperation.kind == "merge",
                    MergeOperation.undone_by.is_(None),
                )  # type: ignore[union-attr]
                .order_by(MergeOperation.id.desc())  # type: ignore[union-attr]
            ).first()
            if found is None:
                raise MergeRefused(f"no merge to undo for {target}")
            operation_id = found
        op = unmerge(session, operation_id, actor=cli_actor(), reason=reason)
    typer.echo(
        f"restored {op.absorbed_id} ({len(op.record_ids)} records) apart from {op.survivor_id} (operation {op.id})"
    )


@review_app.command("list")
def list_command(limit: Annotated[int, typer.Option(help="At most this many")] = 50) -> None:
    """Open (and deferred) cases, strongest evidence first."""
    with transaction() as session:
        cases = open_candidates(session, limit)
    for c in cases:
        typer.echo(f"{c.id}\t{c.state}\t{c.person_a} ~ {c.person_b}\t{describe_evidence(c.evidence)}")
    typer.echo(f"{len(cases)} cases shown")


@review_app.command("decide")
def decide_command(
    candidate: Annotated[int, typer.Argument(help="Case number")],
    decision: Annotated[str, typer.Argument(help=" | ".join(DECISIONS))],
    reason: Reason,
) -> None:
    """Merge the pair, keep them apart for good, or defer."""
    with transaction() as session:
        case = decide(session, get_settings(), candidate, decision, actor=cli_actor(), reason=reason)
    typer.echo(f"case {case.id}: {case.state}")


def register(app: typer.Typer) -> None:
    app.command("merge")(merge_command)
    app.command("unmerge")(unmerge_command)
    app.add_typer(review_app, name="review")
