"""The link strategy: a single-use link by email; opening it (and confirming) verifies the address.

The link holds a 256-bit token kept only as a keyed hash. It is bound to the flow, so to the person and the
address it was sent for, expires after `link_minutes`, and works once. Opening the link shows a page with a
button (the POST verifies): mail scanners and chat previews that fetch links do not use it up.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.contacts.models import VerificationFlow
from idbroker.contacts.policy import contacts_policy
from idbroker.contacts.targets import Target
from idbroker.contacts.verification import codes, flow
from idbroker.contacts.verification.state import Outcome, State
from idbroker.contacts.verification.strategy_code import Submitted
from idbroker.directory.protect import Protector

LINK_PATH = "/me/email/confirm/"


def link_for(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}{LINK_PATH}{token}"


def send_link(session: Session, settings: Settings, *, person_id: str, target: Target, ip: str | None) -> flow.Started:
    if target.kind != "email":
        raise ValueError("links are sent to email addresses only")
    policy = contacts_policy(settings).verification
    token = codes.new_link_token()
    return flow.start(
        session,
        settings,
        person_id=person_id,
        target=target,
        method="link",
        secret=token,
        message="email_link",
        params={"link": link_for(settings, token), "minutes": str(policy.link_minutes)},
        ip=ip,
        minutes=policy.link_minutes,
        flow_id=codes.new_flow_id(),
    )


def find(session: Session, settings: Settings, token: str) -> VerificationFlow | None:
    if not token or len(token) > 128:
        return None
    digests = Protector.from_settings(settings).keyed_hashes(token, "email_link")  # every key version (issue 7)
    return session.scalars(
        select(VerificationFlow).where(VerificationFlow.link_hash.in_(digests)).with_for_update()  # type: ignore[union-attr]
    ).first()


def check(found: VerificationFlow | None) -> Outcome | None:
    """Why this link cannot be used now, or None if it can."""
    if found is None:
        return Outcome.NOT_FOUND
    if found.state == State.PASSED:
        return Outcome.USED
    if found.state == State.SUPERSEDED:
        return Outcome.SUPERSEDED
    if found.state != State.SENT:
        return Outcome.BURNED
    if flow.expired(found, utcnow()):
        return Outcome.EXPIRED
    return None


def submit_link(session: Session, settings: Settings, token: str) -> Submitted:
    """Use the link: the address becomes the flow's person's verified email. The caller commits."""
    found = find(session, settings, token)
    refusal = check(found)
    if refusal is not None or found is None:
        return Submitted(refusal or Outcome.NOT_FOUND)
    point = flow.passed(session, settings, found, utcnow())
    return Submitted(Outcome.VERIFIED, contact_id=point.id)
