"""The code strategy: a 6-digit code by SMS (phones) or email (addresses), typed back by the person.

Submitting answers with exactly one outcome (`state.Outcome`). Only the right code, typed in time into the
person's own, still-active flow, verifies anything; a wrong one counts against the flow (burned after
`wrong_tries`) and against the person's daily failures. Another person's flow is `not_found`, untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from idbroker.audit.chain import append as audit
from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.contacts.errors import ContactRefused
from idbroker.contacts.policy import contacts_policy
from idbroker.contacts.targets import Target
from idbroker.contacts.verification import codes, flow, limits
from idbroker.contacts.verification.state import Outcome, State
from idbroker.directory.protect import Protector
from idbroker.normalize.text import nfkc

TEMPLATES = {"phone": "phone_code", "email": "email_code"}


@dataclass(frozen=True)
class Submitted:
    outcome: Outcome
    tries_left: int = 0
    contact_id: int | None = None


def send_code(session: Session, settings: Settings, *, person_id: str, target: Target, ip: str | None) -> flow.Started:
    """Send a fresh code to `target` for the person (limits checked; the previous code of this purpose ends)."""
    policy = contacts_policy(settings).verification
    code = codes.new_code(policy.code_digits)
    return flow.start(
        session,
        settings,
        person_id=person_id,
        target=target,
        method="code",
        secret=code,
        message=TEMPLATES[target.kind],
        params={"code": code, "minutes": str(policy.code_minutes)},
        ip=ip,
        minutes=policy.code_minutes,
        flow_id=codes.new_flow_id(),
    )


def submit_code(session: Session, settings: Settings, *, person_id: str, flow_id: str, code: str) -> Submitted:
    """Check a code typed by the person. The caller commits whatever the outcome (tries are counted)."""
    policy = contacts_policy(settings)
    now = utcnow()
    found = flow.load(session, person_id, flow_id)
    if found is None or found.method != "code":
        return _answer(session, person_id, None, Outcome.NOT_FOUND)  # the asked-for id is not echoed
    typed = nfkc(code or "").strip().replace(" ", "")
    if len(typed) != policy.verification.code_digits or not typed.isdigit() or not typed.isascii():
        return _answer(session, person_id, found.id, Outcome.MALFORMED, _left(found, policy))
    try:
        limits.check_not_locked(session, policy, found.person_id, now)
    except ContactRefused:
        return _answer(session, person_id, found.id, Outcome.LOCKED)
    if found.state == State.PASSED:
        return _answer(session, person_id, found.id, Outcome.USED)
    if found.state == State.BURNED:
        return _answer(session, person_id, found.id, Outcome.BURNED)
    if found.state == State.SUPERSEDED:
        return _answer(session, person_id, found.id, Outcome.SUPERSEDED)
    if flow.expired(found, now):
        return _answer(session, person_id, found.id, Outcome.EXPIRED)
    if codes.code_matches(Protector.from_settings(settings), found.code_hash, found.id, typed):
        point = flow.passed(session, settings, found, now)
        return Submitted(Outcome.VERIFIED, contact_id=point.id)
    found.wrong_tries += 1
    if found.wrong_tries >= policy.verification.wrong_tries:
        found.state, found.finished_at = State.BURNED, now
        session.add(found)
        return _answer(session, person_id, found.id, Outcome.BURNED)
    session.add(found)
    return _answer(session, person_id, found.id, Outcome.WRONG, _left(found, policy))


def _left(found: flow.VerificationFlow, policy: object) -> int:
    return max(0, policy.verification.wrong_tries - found.wrong_tries)  # type: ignore[attr-defined]


def _answer(session: Session, person_id: str, flow_id: str | None, outcome: Outcome, tries_left: int = 0) -> Submitted:
    audit(
        session,
        actor=f"person:{person_id}",
        action="contact.verification.refused",
        subject=person_id,
        details={"flow": flow_id, "outcome": outcome.value},
    )
    return Submitted(outcome, tries_left)
