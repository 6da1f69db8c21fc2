"""Deliveries: every message tracked from queued to sent to delivered (or failed), retried with back-off.

    queued ──claim──► sending ──gateway took it──► sent ──report: arrived──► delivered
       ▲                 │ ──transient error────► queued (next try after 10 s, 20 s, 40 s … capped)
       └─────────────────┘ ──permanent error, or out of tries──► failed ──► fallback on the other channel

A message is queued in the caller's transaction together with a job (`contacts.deliver`); the first try
may happen right after the request (`attempt_now`), the retries happen in `idbroker worker`. A try claims
the message (`queued → sending`, with a lease) and commits before talking to the gateway, so no database
lock is held while a gateway answers and two workers never send one message; a worker that dies while
sending leaves a lease that runs out, and the message is tried again. The recipient and the template's
values (the code) are kept encrypted, and the values are erased once the message is sent or has failed.

Messages whose template allows it (`fallback: true` in `policies/messages.yaml`) go out on the other
channel when theirs fails — an update link by email when the SMS gateway refuses it or every try failed.
Codes never do. A "not delivered" report arriving after the handover is recorded (it counts in the rates)
but starts no fallback: the message's values were erased when it went out.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, or_, select, update
from sqlmodel import Session

from idbroker.audit.chain import append as audit
from idbroker.clock import utcnow
from idbroker.config import Settings, get_settings
from idbroker.contacts.mask import mask_contact
from idbroker.contacts.models import MessageDelivery
from idbroker.contacts.policy import contacts_policy
from idbroker.contacts.senders.gateway import Outgoing, Permanent, Transient, sender_for
from idbroker.contacts.senders.templates import channels_of, messages, render
from idbroker.directory.protect import Protector
from idbroker.jobs.queue import enqueue
from idbroker.jobs.worker import Retry, register

QUEUE = "contacts.deliver"
DELIVERIES = MessageDelivery.__table__  # type: ignore[attr-defined]
TERMINAL = ("sent", "delivered", "failed")
CHANNEL_KIND = {"sms": "phone", "email": "email"}
log = logging.getLogger("idbroker.contacts.delivery")


def queue_message(
    session: Session,
    settings: Settings,
    *,
    person_id: str | None,
    channel: str,
    to: str,
    template: str,
    params: dict[str, str],
    fallback: bool | None = None,
    fallback_of: int | None = None,
) -> MessageDelivery:
    """Queue one message in the caller's transaction; it is sent once the transaction has committed."""
    if channel not in channels_of(settings, template):
        raise ValueError(f"message template {template!r} has no {channel} form")
    allowed = messages(settings).templates[template].fallback
    protector = Protector.from_settings(settings)
    delivery = MessageDelivery(
        person_id=person_id,
        channel=channel,
        template=template,
        recipient_cipher=protector.encrypt(to, purpose="message_recipient"),
        recipient_hint=mask_contact(CHANNEL_KIND[channel], to),
        params_cipher=protector.encrypt(json.dumps(params), purpose="message_params"),
        fallback=allowed if fallback is None else (fallback and allowed),
        fallback_of=fallback_of,
    )
    session.add(delivery)
    session.flush()
    enqueue(session, QUEUE, {"delivery": delivery.id}, max_attempts=contacts_policy(settings).delivery.attempts + 3)
    return delivery


@dataclass(frozen=True)
class Attempt:
    state: str  # the delivery's state after this try (or as found)
    retry_after: float | None = None  # seconds until the next try is due, when one is
    ran: bool = False  # this call talked to the gateway


def _signature(keyed_hash: str) -> str:
    return keyed_hash.partition("$")[2][:24]  # the version prefix is left out of the URL


def report_signature(settings: Settings, delivery_id: int) -> str:
    """The signature in a message's delivery-report URL, under the current hash key."""
    return _signature(Protector.from_settings(settings).keyed_hash(str(delivery_id), purpose="delivery_report"))


def report_signature_valid(settings: Settings, delivery_id: int, signature: str) -> bool:
    """Whether `signature` signs this delivery under any configured hash key version (reports of messages
    sent before a key rotation still arrive after it)."""
    hashes = Protector.from_settings(settings).keyed_hashes(str(delivery_id), purpose="delivery_report")
    given = signature.encode()  # bytes: compare_digest refuses str with non-ASCII (a 500, not a 403)
    return any(hmac.compare_digest(given, _signature(h).encode()) for h in hashes)


def report_url(settings: Settings, delivery: MessageDelivery) -> str | None:
    if delivery.channel != "sms":
        return None
    base = (settings.report_base_url or settings.public_url).rstrip("/")
    signature = report_signature(settings, delivery.id)  # type: ignore[arg-type]
    return f"{base}/contacts/reports/kannel/{delivery.id}/{signature}?type=%d"


def _claim(session: Session, delivery_id: int, lease_seconds: float) -> bool:
    now = utcnow()
    due = or_(
        and_(DELIVERIES.c.state == "queued", DELIVERIES.c.next_attempt_at <= now),
        and_(DELIVERIES.c.state == "sending", DELIVERIES.c.lease_until < now),
    )
    result = session.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery_id, due)
        .values(
            state="sending",
            lease_until=now + timedelta(seconds=lease_seconds),
            attempts=DELIVERIES.c.attempts + 1,
        )
    )
    session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


def attempt(session: Session, settings: Settings, delivery_id: int) -> Attempt:
    """Try to hand one message to its gateway, if it is due; commits the claim and the outcome itself."""
    policy = contacts_policy(settings).delivery
    if not _claim(session, delivery_id, policy.lease_seconds):
        found = session.get(MessageDelivery, delivery_id, populate_existing=True)
        session.commit()
        if found is None or found.state in TERMINAL:
            return Attempt(found.state if found else "missing")
        due = found.next_attempt_at if found.state == "queued" else (found.lease_until or utcnow())
        return Attempt(found.state, retry_after=max(1.0, (due - utcnow()).total_seconds()))
    delivery = session.get(MessageDelivery, delivery_id, populate_existing=True)
    assert delivery is not None
    protector = Protector.from_settings(settings)
    params: dict[str, str] = json.loads(protector.decrypt(delivery.params_cipher or "", purpose="message_params"))
    to = protector.decrypt(delivery.recipient_cipher, purpose="message_recipient")
    sender = sender_for(settings, delivery.channel)
    outgoing = Outgoing(
        delivery_id=delivery_id,
        to=to,
        message=render(settings, delivery.template, delivery.channel, params),
        report_url=report_url(settings, delivery),
    )
    delivery.provider = sender.name
    now = utcnow()
    retry_after: float | None = None
    try:
        handover = sender.send(outgoing)
    except Transient as exc:
        delivery.last_error = str(exc)[:255]
        if delivery.attempts < policy.attempts:
            retry_after = policy.backoff(delivery.attempts)
            delivery.state, delivery.lease_until = "queued", None
            delivery.next_attempt_at = now + timedelta(seconds=retry_after)
        else:
            _fail(session, settings, delivery, params, now)
    except Permanent as exc:
        delivery.last_error = str(exc)[:255]
        _fail(session, settings, delivery, params, now)
    else:
        delivery.state, delivery.sent_at, delivery.lease_until = "sent", now, None
        delivery.provider_ref = handover.reference
        delivery.last_error = None
        if handover.delivered:
            delivery.state, delivery.delivered_at = "delivered", now
        if sender.name != "outbox":  # the demo outbox keeps the message for its page
            delivery.params_cipher = None
    if delivery.state in TERMINAL:
        audit(
            session,
            actor="system",
            action=f"contact.delivery.{delivery.state}",
            subject=delivery.person_id,
            details={
                "delivery": delivery.id,
                "channel": delivery.channel,
                "template": delivery.template,
                "provider": delivery.provider,
                "attempts": delivery.attempts,
            },
        )
    session.add(delivery)
    session.commit()
    if delivery.state == "failed":
        log.info("delivery %s on %s failed: %s", delivery.id, delivery.channel, delivery.last_error)
    return Attempt(delivery.state, retry_after=retry_after, ran=True)


def _fail(
    session: Session, settings: Settings, delivery: MessageDelivery, params: dict[str, str], now: datetime
) -> None:
    delivery.state, delivery.failed_at, delivery.lease_until = "failed", now, None
    delivery.params_cipher = None
    fall_back(session, settings, delivery, params)


def fall_back(
    session: Session, settings: Settings, delivery: MessageDelivery, params: dict[str, str] | None
) -> MessageDelivery | None:
    """Queue the same message on the other channel, to the person's primary value there, when allowed."""
    if not delivery.fallback or delivery.person_id is None or params is None:
        return None
    other = "email" if delivery.channel == "sms" else "sms"
    if other not in channels_of(settings, delivery.template):
        return None
    from idbroker.contacts.primary import primary_contacts

    primary = primary_contacts(session, delivery.person_id)
    to = primary.email if other == "email" else primary.phone
    if not to:
        return None
    replacement = queue_message(
        session,
        settings,
        person_id=delivery.person_id,
        channel=other,
        to=to,
        template=delivery.template,
        params=params,
        fallback=False,
        fallback_of=delivery.id,
    )
    audit(
        session,
        actor="system",
        action="contact.delivery.fallback",
        subject=delivery.person_id,
        details={"delivery": delivery.id, "replacement": replacement.id, "channel": other},
    )
    return replacement


def attempt_now(engine: Engine, delivery_id: int, settings: Settings | None = None) -> Attempt:
    """The first try right after the request that queued the message (the worker does the retries)."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            return attempt(session, settings or get_settings(), delivery_id)
        except Exception:  # the job is queued: the worker will try again
            session.rollback()
            log.warning("inline delivery %s failed; the worker will retry", delivery_id, exc_info=True)
            return Attempt("queued")


KANNEL_REPORTS = {1: "delivered", 2: "failed", 4: None, 8: "sent", 16: "failed"}


def record_report(session: Session, settings: Settings, delivery_id: int, outcome: str | None, report: str) -> bool:
    """A gateway's delivery report: `delivered`, `failed` (not delivered) or `sent` (accepted by the SMSC)."""
    delivery = session.get(MessageDelivery, delivery_id)
    if delivery is None:
        return False
    now = utcnow()
    delivery.report = report[:32]
    if outcome == "delivered" and delivery.state != "delivered":
        delivery.state, delivery.delivered_at = "delivered", now
        delivery.sent_at = delivery.sent_at or now
    elif outcome == "sent" and delivery.state in ("queued", "sending"):
        delivery.state, delivery.sent_at = "sent", now
    elif outcome == "failed" and delivery.state not in ("delivered", "failed"):
        delivery.state, delivery.failed_at = "failed", now
        delivery.last_error = f"gateway report {report}"[:255]
    session.add(delivery)
    audit(
        session,
        actor="gateway",
        action="contact.delivery.report",
        subject=delivery.person_id,
        details={"delivery": delivery.id, "report": report[:32], "state": delivery.state},
    )
    return True


@dataclass
class DayRates:
    day: date
    channel: str
    total: int = 0
    queued: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0

    @property
    def handed_over(self) -> float | None:
        """Share the gateway took (sent or delivered) of the messages that are done."""
        done = self.sent + self.delivered + self.failed
        return (self.sent + self.delivered) / done if done else None

    @property
    def arrival(self) -> float | None:
        """Share known to have arrived (delivery reported) of the messages that are done."""
        done = self.sent + self.delivered + self.failed
        return self.delivered / done if done else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "channel": self.channel,
            "total": self.total,
            "queued": self.queued,
            "sent": self.sent,
            "delivered": self.delivered,
            "failed": self.failed,
            "handed_over": self.handed_over,
            "arrival": self.arrival,
        }


def rates(session: Session, *, days: int = 7, tz: str = "Asia/Shanghai", now: datetime | None = None) -> list[DayRates]:
    """Delivery counts and rates per channel and per (local) day, newest first."""
    zone = ZoneInfo(tz)
    now = now or utcnow()
    start_day = now.astimezone(zone).date() - timedelta(days=days - 1)
    since = datetime.combine(start_day, datetime.min.time(), tzinfo=zone)
    table: dict[tuple[date, str], DayRates] = {}
    counts: dict[tuple[date, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = session.execute(
        select(DELIVERIES.c.channel, DELIVERIES.c.state, DELIVERIES.c.created_at).where(
            DELIVERIES.c.created_at >= since
        )
    )
    for channel, state, created_at in rows:
        counts[(created_at.astimezone(zone).date(), channel)][state] += 1
    for (day, channel), by_state in counts.items():
        entry = table[(day, channel)] = DayRates(day, channel)
        entry.total = sum(by_state.values())
        entry.queued = by_state["queued"] + by_state["sending"]
        entry.sent, entry.delivered, entry.failed = by_state["sent"], by_state["delivered"], by_state["failed"]
    return sorted(table.values(), key=lambda r: (r.day, r.channel), reverse=True)


def deliver_job(session: Session, payload: dict[str, Any]) -> None:
    """The worker's handler for `contacts.deliver`: try the message; come back when its next try is due."""
    result = attempt(session, get_settings(), int(payload["delivery"]))
    if result.state in ("queued", "sending") and result.retry_after is not None:
        raise Retry("the message is not delivered yet", after=result.retry_after)


register(QUEUE, deliver_job)
