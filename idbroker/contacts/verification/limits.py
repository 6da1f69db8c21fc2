"""Sending limits: per target (phone or address), per person, per client address and per number block.

Counted over the flows actually started (each is one code or link sent), in sliding windows, as the
policy says (`limits:` in `policies/contacts.yaml`). A refusal says which kind of limit and when to come
back, never whether the number belongs to anyone. A person with too many wrong codes in a day is locked
out of verification until the day has passed (NIST SP 800-63B: limit consecutive failures per account).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlmodel import Session

from idbroker.contacts.errors import ContactRefused
from idbroker.contacts.models import VerificationFlow
from idbroker.contacts.policy import ContactsPolicy, Limit

FLOWS = VerificationFlow.__table__  # type: ignore[attr-defined]
WHAT = {
    "target": "codes sent to this number or address",
    "person": "codes you asked for",
    "ip": "codes asked for from your network address",
    "block": "codes asked for",
}


def _check(session: Session, column: str, value: str | None, limits: list[Limit], what: str, now: datetime) -> None:
    if value is None:
        return
    for limit in sorted(limits, key=lambda lim: lim.seconds):
        since = now - timedelta(seconds=limit.seconds)
        rows = session.execute(
            select(func.count(), func.min(FLOWS.c.created_at)).where(
                FLOWS.c[column] == value, FLOWS.c.created_at > since
            )
        ).one()
        count, oldest = rows
        if count >= limit.count:
            wait = int((oldest + timedelta(seconds=limit.seconds) - now).total_seconds()) + 1 if oldest else 60
            raise ContactRefused(
                f"limit_{what}",
                f"too many {WHAT[what]} (at most {limit}): try again in {max(1, wait // 60 + (wait % 60 > 0))} min",
                status=429,
                retry_after=max(1, wait),
            )


def check_send(
    session: Session,
    policy: ContactsPolicy,
    *,
    person_id: str,
    target: str,
    block: str | None,
    ip: str | None,
    now: datetime,
) -> None:
    """Refuse (429) when sending one more code or link would pass a limit; check the lock-out first.

    Two requests at once for one person or one number are serialised (SQLite: the write lock every
    transaction takes; PostgreSQL: advisory locks, person first then number), so a limit is never passed by
    a race."""
    _serialise(session, person_id, target)
    check_not_locked(session, policy, person_id, now)
    limits = policy.limits
    _check(session, "person_id", person_id, limits.per_person, "person", now)
    _check(session, "ip_hash", ip, limits.per_ip, "ip", now)
    _check(session, "target_hash", target, limits.per_target, "target", now)
    _check(session, "block_hash", block, limits.per_block, "block", now)


def _serialise(session: Session, *keys: str) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in keys:
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"contacts:{key}"})


def failures_today(session: Session, person_id: str, now: datetime) -> int:
    since = now - timedelta(days=1)
    total = session.scalar(
        select(func.coalesce(func.sum(FLOWS.c.wrong_tries), 0)).where(
            FLOWS.c.person_id == person_id, FLOWS.c.created_at > since
        )
    )
    return int(total or 0)


def check_not_locked(session: Session, policy: ContactsPolicy, person_id: str, now: datetime) -> None:
    if failures_today(session, person_id, now) >= policy.verification.failures_per_day:
        raise ContactRefused(
            "locked",
            "too many wrong codes today: try again tomorrow or call the helpdesk",
            status=429,
            retry_after=86400,
        )
