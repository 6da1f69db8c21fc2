"""Correcting a phone or email on a person's behalf, or sending them the single-use update link instead.

The contacts domain does the work (`idbroker.contacts.helpdesk.correct_contact` marks the value
helpdesk-confirmed with who and why; `idbroker.contacts.update_link.send_update_link` queues the link to
the person's primary phone or email). The helpdesk adds its own rule on the reason: it goes into the audit
log, so it must name a ticket or call and hold no phone number or ID (`reasons.check_reason`).
"""

from __future__ import annotations

from sqlmodel import Session

from idbroker.config import Settings
from idbroker.contacts.helpdesk import correct_contact
from idbroker.contacts.models import ContactPoint
from idbroker.contacts.update_link import UpdateLinkSent, send_update_link
from idbroker.helpdesk.reasons import check_reason

KINDS = ("phone", "email")
CHANNELS = ("sms", "email")


def correct(
    session: Session, settings: Settings, person_id: str, kind: str, value: str, *, actor: str, reason: str
) -> ContactPoint:
    """Record a phone or email the person confirmed to the helpdesk (in the caller's transaction)."""
    return correct_contact(session, person_id, kind, value, actor=actor, reason=check_reason(reason), settings=settings)


def send_link(session: Session, settings: Settings, person_id: str, channel: str, *, actor: str) -> UpdateLinkSent:
    """Send the person the single-use link to update their contacts themselves (sms or email)."""
    return send_update_link(session, person_id, channel, actor=actor, settings=settings)
