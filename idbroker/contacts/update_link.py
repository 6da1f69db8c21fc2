""" "Send an SMS to update": a single-use link that opens a person's update page without a password.

The helpdesk or an operator sends it to the person's primary phone (or email); if the message cannot be
delivered it falls back to the other channel (`fallback: true` in messages.yaml). The link holds a 256-bit
token stored only as a keyed hash, is bound to that person, expires after `update_link.minutes`, works
once, and a newer link ends the older ones. Using it signs the person in for their contact pages only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlmodel import Session

from idbroker.audit.chain import append as audit
from idbroker.clock import utcnow
from idbroker.config import Settings, get_settings
from idbroker.contacts.delivery import queue_message
from idbroker.contacts.errors import ContactRefused
from idbroker.contacts.models import UpdateLink
from idbroker.contacts.policy import contacts_policy
from idbroker.contacts.primary import primary_contacts
from idbroker.contacts.verification.codes import new_link_token, token_hash
from idbroker.directory.protect import Protector
from idbroker.directory.queries import resolve_person

PATH = "/me/update/"
LINKS = UpdateLink.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class UpdateLinkSent:
    link_id: int
    delivery_id: int
    channel: str
    to_hint: str  # masked


def send_update_link(
    session: Session, person_id: str, channel: str, *, actor: str, settings: Settings | None = None
) -> UpdateLinkSent:
    """Queue an update link to the person's primary phone (`sms`) or email (`email`), in the caller's transaction."""
    settings = settings or get_settings()
    if channel not in ("sms", "email"):
        raise ContactRefused("channel_invalid", "an update link goes by sms or email")
    person = resolve_person(session, person_id)
    primary = primary_contacts(session, person.id)
    to = primary.phone if channel == "sms" else primary.email
    if not to:
        what = "mobile phone" if channel == "sms" else "email"
        raise ContactRefused("no_destination", f"this person has no primary {what} to send the link to")
    minutes = contacts_policy(settings).update_link.minutes
    now = utcnow()
    session.execute(
        update(LINKS)
        .where(LINKS.c.person_id == person.id, LINKS.c.used_at.is_(None), LINKS.c.expires_at > now)
        .values(expires_at=now)
    )
    token = new_link_token()
    link = UpdateLink(
        token_hash=token_hash(Protector.from_settings(settings), token, "update_link"),
        person_id=person.id,
        channel=channel,
        created_by=actor[:64],
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    session.add(link)
    session.flush()
    delivery = queue_message(
        session,
        settings,
        person_id=person.id,
        channel=channel,
        to=to,
        template="update_link",
        params={"link": f"{settings.public_url.rstrip('/')}{PATH}{token}", "minutes": str(minutes)},
    )
    link.delivery_id = delivery.id
    session.add(link)
    audit(
        session,
        actor=actor[:64],
        action="contact.update_link.sent",
        subject=person.id,
        details={"link": link.id, "channel": channel, "delivery": delivery.id},
    )
    return UpdateLinkSent(link.id, delivery.id, channel, delivery.recipient_hint)  # type: ignore[arg-type]


def _find(session: Session, settings: Settings, token: str) -> UpdateLink | None:
    if not token or len(token) > 128:
        return None
    digests = Protector.from_settings(settings).keyed_hashes(token, "update_link")  # every key version (issue 7)
    return session.scalars(
        select(UpdateLink).where(UpdateLink.token_hash.in_(digests)).with_for_update()  # type: ignore[attr-defined]
    ).first()


def check_update_link(session: Session, token: str, settings: Settings | None = None) -> UpdateLink:
    """The link if it can be used now; else a clear refusal (unknown, used, expired) — nothing is changed."""
    link = _find(session, settings or get_settings(), token)
    if link is None:
        raise ContactRefused("link_unknown", "this link is not valid: ask the helpdesk for a new one", status=404)
    if link.used_at is not None:
        raise ContactRefused("link_used", "this link was already used: ask the helpdesk for a new one", status=410)
    if utcnow() >= link.expires_at:
        raise ContactRefused("link_expired", "this link has expired: ask the helpdesk for a new one", status=410)
    return link


def use_update_link(session: Session, token: str, settings: Settings | None = None) -> tuple[str, str]:
    """Spend the link: (the person it is bound to, as they are today; the value of their short update session)."""
    settings = settings or get_settings()
    link = check_update_link(session, token, settings)
    now = utcnow()
    value = new_link_token()
    link.used_at = now
    link.session_hash = token_hash(Protector.from_settings(settings), value, "update_session")
    link.session_expires_at = now + timedelta(minutes=contacts_policy(settings).update_link.minutes)
    session.add(link)
    person = resolve_person(session, link.person_id)
    audit(
        session,
        actor=f"person:{person.id}",
        action="contact.update_link.used",
        subject=person.id,
        details={"link": link.id},
    )
    return person.id, value


def update_session_person(session: Session, value: str | None, settings: Settings | None = None) -> str | None:
    """The person an update session (started by a used link) belongs to, while it lasts; else None."""
    if not value or len(value) > 128:
        return None
    digests = Protector.from_settings(settings or get_settings()).keyed_hashes(value, "update_session")
    link = session.scalars(select(UpdateLink).where(UpdateLink.session_hash.in_(digests))).first()  # type: ignore[union-attr]
    if link is None or link.session_expires_at is None or utcnow() >= link.session_expires_at:
        return None
    return resolve_person(session, link.person_id).id


def end_update_session(session: Session, value: str | None, settings: Settings | None = None) -> None:
    if not value or len(value) > 128:
        return
    digests = Protector.from_settings(settings or get_settings()).keyed_hashes(value, "update_session")
    session.execute(update(LINKS).where(LINKS.c.session_hash.in_(digests)).values(session_expires_at=utcnow()))
