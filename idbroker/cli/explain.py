"""CLI: `idbroker explain PERSON-OR-NUMBER` — the linked records, and the evidence and score of each link."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from idbroker.audit.chain import append as audit
from idbroker.cli.running import cli_actor, transaction
from idbroker.contacts.mask import mask_phone
from idbroker.contacts.primary import describe, primary_choices
from idbroker.linking.explain import describe_evidence, explain


def explain_command(
    query: Annotated[str, typer.Argument(help="A person ID, or any number a person holds")],
) -> None:
    """Show who a person is made of and why each record belongs to them."""
    console = Console()
    with transaction() as session:
        found = explain(session, query)
        primaries = [line for choice in primary_choices(session, found.person.id).values() for line in describe(choice)]
        audit(
            session,
            actor=cli_actor(),
            action="person.explain",
            subject=found.person.id,
            details={"records": len(found.records)},
        )
    person = found.person
    console.print(f"person [bold]{person.id}[/bold] ({person.state}), created {person.created_at:%Y-%m-%d %H:%M}")
    if found.aliases:
        console.print("absorbed IDs that resolve here: " + ", ".join(found.aliases))
    if found.others:
        console.print("[yellow]other people also hold this number:[/yellow] " + ", ".join(found.others))
    console.print(f"{len(found.records)} records:")
    for r in found.records:
        evidence = r.link_evidence or {}
        aside = ", ".join(sorted({a["field"] for a in r.set_aside}))
        id_state = "valid ID on file" if r.national_id_hash else "no valid ID"
        console.print(
            f"  record {r.id}: {r.source} {r.key} {r.name or '-'}, born {r.birth_date or '-'}, "
            f"phone {mask_phone(r.phone) if r.phone else '-'}, {id_state}, {'present' if r.present else 'inactive'}"
            + (f", set aside: {aside}" if aside else ""),
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            f"      {evidence.get('outcome', '-')}: {describe_evidence(evidence)}",
            highlight=False,
            soft_wrap=True,
        )
    for op in found.history:
        undone = f", undone by {op.undone_by}" if op.undone_by else ""
        console.print(
            f"operation {op.id}: {op.kind} {op.absorbed_id} into {op.survivor_id} by {op.actor} "
            f"at {op.at:%Y-%m-%d %H:%M} — {op.reason}{undone}; evidence: {describe_evidence(op.evidence)}",
            soft_wrap=True,
            highlight=False,
        )
    for c in found.candidates:
        console.print(
            f"review case {c.id} ({c.state}): {c.person_a} ~ {c.person_b}: {describe_evidence(c.evidence)}",
            soft_wrap=True,
            highlight=False,
        )
    for line in primaries:  # contacts (issue 3): why this phone and this email are primary
        console.print(line, soft_wrap=True, highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command("explain")(explain_command)
