"""The verification flow: one code or link, sent to one phone or address, for one person, for a while.

`start` checks the limits, supersedes the person's earlier flow of the same purpose (one active code per
purpose), stores the target encrypted (its keyed hash counts sends) and the code or link as a keyed hash,
and queues the message. The answer is the same whether or not the number or address is known to belong to
someone: nothing is looked up about the target before the person proves they hold it. `passed` is the one
place a flow changes contacts: the value becomes a verified point of the person, said by themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import Session

from idbroker.audit.chain import append as audit
from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.contacts.delivery import queue_message
from idbroker.contacts.models import ContactPoint, VerificationFlow
from idbroker.contacts.policy import contacts_policy
from idbroker.contacts.primary import holders_of, recompute
from idbroker.contacts.provenance import clusters, contact_point, phone_type, say
from idbroker.contacts.targets import Target
from idbroker.contacts.verification import codes, limits
from idbroker.contacts.verification.state import State
from idbroker.directory.protect import Protector
from idbroker.directory.queries import resolve_person

FLOWS = VerificationFlow.__table__  # type: ignore[attr-defined]
METHOD_OF = {("sms", "code"): "sms_code", ("email", "code"): "email_code", ("email", "link"): "email_link"}


@dataclass(frozen=True)
class Started:
    """What the person is told: which flow to answer, until when, where it went (masked)."""

    flow_id: str
    expires_at: datetime
    channel: str
    method: str
    delivery_id: int


def start(
    session: Session,
    settings: Settings,
    *,
    person_id: str,
    target: Target,
    method: str,
    secret: str,
    message: str,
    params: dict[str, str],
    ip: str | None,
    minutes: int,
    flow_id: str,
) -> Started:
    """Start a flow whose secret (a code or a link token) is already made; called by the strategies."""
    policy = contacts_policy(settings)
    protector = Protector.from_settings(settings)
    person = resolve_person(session, person_id)
    now = utcnow()
    target_hash = codes.target_hash(protector, target.kind, target.value)
    block = codes.block_hash(protector, target.value, policy.limits.block_digits) if target.kind == "phone" else None
    ip_hash = codes.ip_hash(protector, ip) if ip else None
    limits.check_send(session, policy, person_id=person.id, target=target_hash, block=block, ip=ip_hash, now=now)
    session.execute(
        update(FLOWS)
        .where(FLOWS.c.person_id == person.id, FLOWS.c.purpose == target.kind, FLOWS.c.state == State.SENT)
        .values(state=State.SUPERSEDED, finished_at=now)
    )
    flow = VerificationFlow(
        id=flow_id,
        person_id=person.id,
        purpose=target.kind,
        channel=target.channel,
        method=method,
        target_cipher=protector.encrypt(target.value, purpose="verification_target"),
        target_hash=target_hash,
        block_hash=block,
        ip_hash=ip_hash,
        code_hash=codes.code_hash(protector, flow_id, secret) if method == "code" else None,
        link_hash=codes.token_hash(protector, secret, "email_link") if method == "link" else None,
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    session.add(flow)
    session.flush()
    delivery = queue_message(
        session,
        settings,
        person_id=person.id,
        channel=target.channel,
        to=target.value,
        template=message,
        params=params,
    )
    flow.delivery_id = delivery.id
    session.add(flow)
    audit(
        session,
        actor=f"person:{person.id}",
        action="contact.verification.start",
        subject=person.id,
        details={"flow": flow.id, "purpose": target.kind, "channel": target.channel, "method": method},
    )
    return Started(flow.id, flow.expires_at, target.channel, method, delivery.id)  # type: ignore[arg-type]


def load(session: Session, person_id: str, flow_id: str) -> VerificationFlow | None:
    """The flow, if it is one of this person's (any ID that resolves to them); else None — never another's."""
    if not flow_id or len(flow_id) > 32:
        return None
    flow = session.get(VerificationFlow, flow_id, with_for_update=True)
    if flow is None:
        return None
    members = next(iter(clusters(session, [person_id]).values()))
    return flow if flow.person_id in members else None


def expired(flow: VerificationFlow, now: datetime) -> bool:
    return flow.state == State.SENT and now >= flow.expires_at


def target_of(settings: Settings, flow: VerificationFlow) -> str:
    return Protector.from_settings(settings).decrypt(flow.target_cipher, purpose="verification_target")


def passed(session: Session, settings: Settings, flow: VerificationFlow, now: datetime) -> ContactPoint:
    """The person proved they hold the target: it becomes their verified value, said by themselves."""
    value = target_of(settings, flow)
    flow.state, flow.finished_at = State.PASSED, now
    session.add(flow)
    person = resolve_person(session, flow.person_id)
    point = contact_point(
        session, person.id, flow.purpose, value, phone_type(value) if flow.purpose == "phone" else None
    )
    point.state, point.removed_at, point.removed_by = "active", None, None
    point.verified_at, point.verified_method = now, METHOD_OF[(flow.channel, flow.method)]
    point.verified_flow_id = flow.id
    point.updated_at = now
    session.add(point)
    say(session, point, "self_service", actor=f"person:{person.id}")
    session.flush()
    others = holders_of(session, [(flow.purpose, value)])
    recompute(session, [person.id, *sorted(others - {person.id})], settings)
    audit(
        session,
        actor=f"person:{person.id}",
        action="contact.verified",
        subject=person.id,
        details={"flow": flow.id, "contact": point.id, "kind": flow.purpose, "method": point.verified_method},
    )
    return point


def pending(session: Session, person_id: str, now: datetime) -> list[VerificationFlow]:
    """The person's flows still waiting for an answer (for the "my phones" page)."""
    members = next(iter(clusters(session, [person_id]).values()))
    return list(
        session.scalars(
            select(VerificationFlow)
            .where(
                VerificationFlow.person_id.in_(members),  # type: ignore[attr-defined]
                VerificationFlow.state == State.SENT,  # type: ignore[arg-type]
                VerificationFlow.expires_at > now,  # type: ignore[arg-type, operator]
            )
            .order_by(VerificationFlow.created_at.desc())  # type: ignore[attr-defined]
        )
    )
