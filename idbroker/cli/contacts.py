"""CLI: `idbroker contacts …` — a person's phones and emails, update links, delivery rates, collecting.

- `show PERSON-OR-NUMBER` — every value (masked) with its sources, verification and why the primary is primary;
- `send-update-link PERSON-OR-NUMBER --channel sms|email` — "send an SMS to update" (audited);
- `correct PERSON-OR-NUMBER phone|email VALUE --reason …` — a helpdesk-confirmed value (audited);
- `rates [--days 7] [--json]` — delivery counts and rates per channel and per day;
- `collect [--all]` — catch up on directory changes (or collect everyone again, after restoring a backup).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from sqlalchemy import select

from idbroker.audit.chain import append as audit
from idbroker.cli.db import fail, open_engine
from idbroker.cli.running import cli_actor, transaction
from idbroker.config import get_settings
from idbroker.contacts.collect import BATCH, collect_in_batches, collect_people
from idbroker.contacts.delivery import attempt_now, rates
from idbroker.contacts.errors import ContactRefused
from idbroker.contacts.helpdesk import correct_contact
from idbroker.contacts.mask import mask_contact
from idbroker.contacts.primary import describe, primary_choices
from idbroker.contacts.provenance import contacts_of
from idbroker.contacts.update_link import send_update_link
from idbroker.directory.models import Person
from idbroker.linking.explain import find_people

contacts_app = typer.Typer(no_args_is_help=True, help="Phones and emails: provenance, update links, delivery rates.")
Who = Annotated[str, typer.Argument(help="A person ID, or any number a person holds (学号, 工号, uid)")]


def _person(session: object, query: str) -> str:
    people = find_people(session, query)  # type: ignore[arg-type]
    if not people:
        raise fail(f"no person and no record with the number {query!r}")
    if len(people) > 1:
        raise fail(f"{len(people)} people hold the number {query!r}: give a person ID")
    return people[0].id


@contacts_app.command("show")
def show_command(who: Who) -> None:
    """Every phone and email of a person (masked), where each came from, and why the primary one is."""
    with transaction() as session:
        person = _person(session, who)
        views = contacts_of(session, person)
        choices = primary_choices(session, person)
        audit(session, actor=cli_actor(), action="contact.show", subject=person, details={"values": len(views)})
    typer.echo(f"person {person}")
    for view in views:
        status = "removed" if view.removed else (f"verified {view.verified_method}" if view.verified_at else "")
        confirmed = view.confirmed
        if confirmed:
            status += f" helpdesk-confirmed by {confirmed.confirmed_by}: {confirmed.confirmed_reason}"
        typer.echo(f"  {view.kind} {mask_contact(view.kind, view.value)} {view.phone_type or ''} {status}".rstrip())
        for said in view.claims:
            where = f"{said.source} {said.record_key or said.actor or ''}".strip()
            until = f", until {said.until:%Y-%m-%d}" if said.until else ""
            typer.echo(
                f"      {where}: since {said.first_said:%Y-%m-%d}, last said {said.last_said:%Y-%m-%d}"
                f"{'' if said.current else ' (no longer)'}{until}"
            )
    for kind in ("phone", "email"):
        if kind in choices:
            for line in describe(choices[kind]):
                typer.echo(line)


@contacts_app.command("send-update-link")
def send_update_link_command(
    who: Who,
    channel: Annotated[str, typer.Option("--channel", help="sms (the primary phone) or email")] = "sms",
) -> None:
    """Send the person a single-use link that opens their update page without a password."""
    try:
        with transaction() as session:
            sent = send_update_link(session, _person(session, who), channel, actor=cli_actor())
    except ContactRefused as exc:
        raise fail(f"{exc.reason}\nnothing was sent") from None
    engine = open_engine()
    try:
        outcome = attempt_now(engine, sent.delivery_id)
    finally:
        engine.dispose()
    typer.echo(f"update link {sent.link_id} to {sent.to_hint} by {channel}: {outcome.state}")


@contacts_app.command("correct")
def correct_command(
    who: Who,
    kind: Annotated[str, typer.Argument(help="phone or email")],
    value: Annotated[str, typer.Argument(help="The value the person confirmed")],
    reason: Annotated[str, typer.Option("--reason", help="How it was confirmed (a call, a ticket)")] = "",
) -> None:
    """Record a phone or email the helpdesk confirmed with the person (it outranks every source)."""
    try:
        with transaction() as session:
            point = correct_contact(session, _person(session, who), kind, value, actor=cli_actor(), reason=reason)
            masked = mask_contact(point.kind, point.value)
    except ContactRefused as exc:
        raise fail(f"{exc.reason}\nnothing was changed") from None
    typer.echo(f"{kind} {masked} confirmed")


@contacts_app.command("rates")
def rates_command(
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="How many days back")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
) -> None:
    """Messages per channel and per day: sent, delivered (reported by the gateway), failed, and the rates."""
    with transaction() as session:
        table = rates(session, days=days)
    if as_json:
        for row in table:
            typer.echo(json.dumps(row.as_dict(), ensure_ascii=False))
        return
    typer.echo("day         channel  total  sent  delivered  failed  queued  handed over  arrived")
    for row in table:
        handed = f"{row.handed_over:.1%}" if row.handed_over is not None else "-"
        arrived = f"{row.arrival:.1%}" if row.arrival is not None else "-"
        typer.echo(
            f"{row.day}  {row.channel:<7} {row.total:>6} {row.sent:>5} {row.delivered:>10} {row.failed:>7} "
            f"{row.queued:>7} {handed:>12} {arrived:>8}"
        )


@contacts_app.command("collect")
def collect_command(
    everyone: Annotated[bool, typer.Option("--all", help="Collect every person again, not only changes")] = False,
) -> None:
    """Bring phones and emails up to date with the source records now, in batches (imports and merges do this
    themselves; above `IDBROKER_CONTACTS_INLINE_COLLECT_LIMIT` changed people they leave it to the worker)."""
    settings = get_settings()
    with transaction() as session:
        if everyone:
            people = list(session.scalars(select(Person.id).where(Person.state == "active")))
            for start in range(0, len(people), BATCH):
                collect_people(session, people[start : start + BATCH], settings, recompute_all=True)
                session.commit()
            count = len(people)
        else:
            count = collect_in_batches(session, settings)
        audit(session, actor=cli_actor(), action="contact.collect", details={"people": count, "all": everyone})
    typer.echo(f"collected {count} people")


def register(app: typer.Typer) -> None:
    app.add_typer(contacts_app, name="contacts")
