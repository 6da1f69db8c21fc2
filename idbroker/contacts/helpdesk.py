"""The helpdesk's correction: a phone or email confirmed on a call, with who confirmed it and why.

A confirmed value outranks every source (policy rule `confirmed_by_helpdesk`) but not what the person
verified themselves. It is a claim of the `helpdesk` source, kept with the actor and the reason; the audit
event holds the contact id and the reason, never the value.
"""

from __future__ import annotations

from sqlmodel import Session

from idbroker.audit.chain import append as audit
from idbroker.clock import utcnow
from idbroker.config import Settings, get_settings
from idbroker.contacts.errors import ContactRefused
from idbroker.contacts.models import ContactPoint
from idbroker.contacts.policy import contacts_policy
from idbroker.contacts.primary import holders_of, recompute
from idbroker.contacts.provenance import contact_point, say
from idbroker.contacts.targets import parse_email, parse_phone
from idbroker.directory.queries import resolve_person

MAX_REASON = 255


def correct_contact(
    session: Session,
    person_id: str,
    kind: str,
    value: str,
    *,
    actor: str,
    reason: str,
    settings: Settings | None = None,
) -> ContactPoint:
    """Record a value the helpdesk confirmed with the person (`kind` phone or email), in the caller's transaction."""
    settings = settings or get_settings()
    reason = (reason or "").strip()
    if not reason:
        raise ContactRefused("reason_missing", "a helpdesk correction needs a reason (how it was confirmed)")
    if len(reason) > MAX_REASON:
        raise ContactRefused("reason_too_long", f"the reason is longer than {MAX_REASON} characters")
    if kind == "phone":
        target = parse_phone(value, contacts_policy(settings), for_sms=False)
    elif kind == "email":
        target = parse_email(value)
    else:
        raise ContactRefused("kind_invalid", "a contact is a phone or an email")
    person = resolve_person(session, person_id)
    now = utcnow()
    point = contact_point(session, person.id, target.kind, target.value, target.phone_type)
    point.state, point.removed_at, point.removed_by = "active", None, None
    point.confirmed_at, point.confirmed_by, point.confirmed_reason = now, actor[:64], reason
    point.updated_at = now
    session.add(point)
    say(session, point, "helpdesk", actor=actor[:64], reason=reason)
    session.flush()
    others = holders_of(session, [(target.kind, target.value)])
    recompute(session, [person.id, *sorted(others - {person.id})], settings)
    audit(
        session,
        actor=actor[:64],
        action="contact.helpdesk.corrected",
        subject=person.id,
        details={"contact": point.id, "kind": target.kind, "reason": reason},
    )
    return point
