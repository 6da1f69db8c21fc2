"""CLI: `idbroker merge|unmerge` and `idbroker review list|decide|approve|reject` — people deciding what the
linker could not.

The review commands go through `idbroker.linking.review`, which holds the four eyes of `policies/review.yaml`
for the console and the CLI alike: `review decide N merge` of a staff member's records only asks
(`awaiting approval A`), and `review approve A` / `review reject A` must come from a different actor. The
actor is the operating-system account (`cli:<user>`), or with `--as UID` the staff member holding that CAS
uid (`person:<id>`, exactly as the helpdesk console records them, so nobody approves their own request by
changing channel); `--as` is refused unless the uid holds the `helpdesk` role now. Either way the actor is
what the operator's shell claims: the audit log records it, the database cannot prove it.
"""

from __future__ import annotations

from typing import Annotated

import typer
from sqlmodel import Session, select

from idbroker.cli.running import cli_actor, transaction
from idbroker.config import get_settings
from idbroker.directory.queries import people_by_number, resolve_person
from idbroker.linking.explain import describe_evidence
from idbroker.linking.merge import MergeRefused, unmerge
from idbroker.linking.models import MergeOperation
from idbroker.linking.review import (
    DECISIONS,
    Outcome,
    ReviewRefused,
    approve,
    decide,
    merge_pair,
    open_candidates,
    pending_approval,
    pending_approvals,
    reject,
)
from idbroker.staff.roles import roles_of

review_app = typer.Typer(no_args_is_help=True, help="The review queue of uncertain merges.")
Reason = Annotated[str, typer.Option("--reason", help="Why (a ticket number or call): goes to the audit log")]
As = Annotated[
    str | None,
    typer.Option("--as", metavar="UID", help="Act as the helpdesk member holding this CAS uid (default: your login)"),
]
REVIEW_ROLE = "helpdesk"


def review_actor(session: Session, uid: str | None) -> str:
    """`cli:<user>`, or the actor the console records for the helpdesk member holding `uid` (checked now)."""
    if uid is None:
        return cli_actor()
    if REVIEW_ROLE not in roles_of(session, uid):
        raise ReviewRefused("not_staff", f"--as {uid}: that uid does not hold the {REVIEW_ROLE} role")
    people = people_by_number(session, uid)
    if len(people) != 1:
        raise ReviewRefused("not_staff", f"--as {uid}: {len(people)} people hold that uid, not one")
    return f"person:{resolve_person(session, people[0].id).id}"


def merge_command(
    survivor: Annotated[str, typer.Argument(help="Person who stays")],
    absorbed: Annotated[str, typer.Argument(help="Person whose ID becomes an alias of the survivor")],
    reason: Reason,
    force: Annotated[bool, typer.Option("--force", help="Merge despite a veto (with proof)")] = False,
    as_uid: As = None,
) -> None:
    """Merge two people into one (recorded, undoable with `idbroker unmerge`); staff records wait for a second
    person (four eyes), like `review decide N merge`."""
    with transaction() as session:
        actor = review_actor(session, as_uid)
        done = merge_pair(session, get_settings(), survivor, absorbed, actor=actor, reason=reason, force=force)
    if isinstance(done, Outcome):
        typer.echo(_said(done))
        return
    typer.echo(
        f"merged {done.absorbed_id} into {done.survivor_id} (operation {done.id}, {len(done.record_ids)} records moved)"
    )


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
    """Open (and deferred) cases, strongest evidence first; a merge awaiting a second person says so."""
    with transaction() as session:
        cases = open_candidates(session, limit)
        waiting = {c.id: pending_approval(session, c.id) for c in cases if c.id is not None}
    for c in cases:
        line = f"{c.id}\t{c.state}\t{c.person_a} ~ {c.person_b}\t{describe_evidence(c.evidence)}"
        approval = waiting.get(c.id)
        if approval is not None:
            line += f"\tmerge awaiting approval {approval.id} (asked by {approval.requested_by}, rule {approval.rule})"
        typer.echo(line)
    typer.echo(f"{len(cases)} cases shown")


@review_app.command("pending")
def pending_command(limit: Annotated[int, typer.Option(help="At most this many")] = 50) -> None:
    """Merges waiting for a second person (four eyes), oldest first."""
    with transaction() as session:
        approvals = pending_approvals(session, limit)
    for a in approvals:
        typer.echo(f"{a.id}\tcase {a.candidate_id}\tasked by {a.requested_by}\trule {a.rule}\t{a.reason}")
    typer.echo(f"{len(approvals)} merges awaiting approval")


def _said(outcome: Outcome) -> str:
    if outcome.state == "awaiting_approval":
        return (
            f"case {outcome.candidate_id}: the merge awaits a second person (rule {outcome.rule}): "
            f"approval {outcome.approval_id} — another helpdesk member runs "
            f"`idbroker review approve {outcome.approval_id} --reason …` (or `reject`)"
        )
    if outcome.approval_id is not None:
        return f"case {outcome.candidate_id}: {outcome.state} (approval {outcome.approval_id})"
    return f"case {outcome.candidate_id}: {outcome.state}"


@review_app.command("decide")
def decide_command(
    candidate: Annotated[int, typer.Argument(help="Case number")],
    decision: Annotated[str, typer.Argument(help=" | ".join(DECISIONS))],
    reason: Reason,
    as_uid: As = None,
) -> None:
    """Merge the pair, keep them apart for good, or defer (a merge of staff records waits for a second person)."""
    with transaction() as session:
        outcome = decide(
            session, get_settings(), candidate, decision, actor=review_actor(session, as_uid), reason=reason
        )
    typer.echo(_said(outcome))


@review_app.command("approve")
def approve_command(
    approval: Annotated[int, typer.Argument(help="Approval number (from `review decide`, `list` or `pending`)")],
    reason: Reason,
    as_uid: As = None,
) -> None:
    """Approve a merge another actor asked for: it is done now, in your name (four eyes)."""
    with transaction() as session:
        outcome = approve(session, get_settings(), approval, actor=review_actor(session, as_uid), reason=reason)
    typer.echo(_said(outcome))


@review_app.command("reject")
def reject_command(
    approval: Annotated[int, typer.Argument(help="Approval number")],
    reason: Reason,
    as_uid: As = None,
) -> None:
    """Reject a merge another actor asked for: nothing is merged and the case stays open."""
    with transaction() as session:
        outcome = reject(session, approval, actor=review_actor(session, as_uid), reason=reason)
    typer.echo(_said(outcome))


def register(app: typer.Typer) -> None:
    app.command("merge")(merge_command)
    app.command("unmerge")(unmerge_command)
    app.add_typer(review_app, name="review")
