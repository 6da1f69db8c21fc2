"""What a person does with their own values: choose the primary one, remove a stale one.

Only a value the person verified can be chosen as primary (choosing is their word, like verifying).
Removing a value takes it out of the running for good, whatever the sources keep saying, until the person
verifies it again; their own claim on it ends. Both recompute the primary choice and are audited.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session

from idbroker.audit.chain import append as audit
from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.contacts.errors import ContactRefused
from idbroker.contacts.primary import holders_of, recompute
from idbroker.contacts.provenance import POINTS, ContactView, contacts_of, unsay
from idbroker.directory.queries import resolve_person


def find_contact(session: Session, person_id: str, contact_id: int) -> ContactView:
    """One of the person's own values by its id; another person's is refused like a missing one."""
    for view in contacts_of(session, person_id):
        if contact_id in {p.id for p in view.points}:
            return view
    raise ContactRefused("contact_not_found", "no such phone or email of yours", status=404)


def choose_primary(session: Session, settings: Settings, person_id: str, contact_id: int) -> ContactView:
    view = find_contact(session, person_id, contact_id)
    if view.removed:
        raise ContactRefused("contact_removed", "this value was removed: add and verify it again")
    if view.verified_at is None:
        raise ContactRefused("contact_not_verified", "verify this value before making it your primary one")
    person = resolve_person(session, person_id)
    now = utcnow()
    session.execute(
        update(POINTS)
        .where(POINTS.c.id.in_(view.point_ids), POINTS.c.state == "active")
        .values(chosen_at=now, updated_at=now)
    )
    recompute(session, [person.id], settings)
    audit(
        session,
        actor=f"person:{person.id}",
        action="contact.primary.chosen",
        subject=person.id,
        details={"contact": view.id, "kind": view.kind},
    )
    return view


def remove_contact(
    session: Session, settings: Settings, person_id: str, contact_id: int, *, actor: str | None = None
) -> ContactView:
    view = find_contact(session, person_id, contact_id)
    person = resolve_person(session, person_id)
    if view.removed:
        return view
    now = utcnow()
    actor = actor or f"person:{person.id}"
    session.execute(
        update(POINTS)
        .where(POINTS.c.id.in_(view.point_ids))
        .values(state="removed", removed_at=now, removed_by=actor[:64], updated_at=now)
    )
    unsay(session, view.point_ids, "self_service")
    session.flush()
    others = holders_of(session, [(view.kind, view.value)])
    recompute(session, [person.id, *sorted(others - {person.id})], settings)
    audit(
        session,
        actor=actor,
        action="contact.removed",
        subject=person.id,
        details={"contact": view.id, "kind": view.kind},
    )
    return view
